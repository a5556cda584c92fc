# Draw a benchmark run (results.csv and ratios.csv in dir) as dir/results.png.
# Usage: gnuplot -e "dir='bench/out'" bench/plot.gp
if (!exists("dir")) dir = "bench/out"
res = dir."/results.csv"
rat = dir."/ratios.csv"
# The rows of one section (and one name), through awk: CSV fields never hold commas.
rows(f, sec) = sprintf("< awk -F, '$1==\"%s\"' %s", sec, f)
named(f, sec, name) = sprintf("< awk -F, '$1==\"%s\" && $2==\"%s\"' %s", sec, name, f)
against(sec, name, base) = sprintf("< awk -F, '$1==\"%s\" && $2==\"%s\" && $4==\"%s\"' %s", sec, name, base, rat)

machine = system(sprintf("head -n 1 %s | sed 's/^# //; s/; glibc=.*//'", res))

set terminal pngcairo size 1800,1150 font "sans,10" noenhanced
set output dir."/results.png"
set datafile separator ","
set datafile missing "n/a"
set key top left font "sans,9" noopaque
set grid ytics
set bmargin 7
set multiplot layout 2,3 title "pkalloc benchmarks (medians; ratios from the same run)\n".machine font "sans,11"

# 1. Domain switch ---------------------------------------------------------
set title "1. Domain switch: ns per enter+exit pair (log)"
set logscale y
set style fill solid 0.6
set boxwidth 0.6
set xtics rotate by 20 right font "sans,8"
set lmargin 12
unset key
plot rows(res, "switch") using 0:5:xtic(2) with boxes lc rgb "#4477aa", \
     "" using 0:5:(sprintf("%.0f", $5)) with labels offset 0,0.7 font "sans,8"

# 2. Secret allocation -----------------------------------------------------
set title "2. Allocation + free: ns per pair by size (log-log)"
set logscale xy
set xtics norotate font "sans,9" (16, 64, 256, 1024, 4096, 65536)
set xlabel "bytes"
set yrange [5:2e6]
set lmargin
set key top left font "sans,8"
# Series names with "|" for a space (gnuplot's word lists split at spaces).
unbar(s) = system(sprintf("echo '%s' | tr '|' ' '", s))
series = "domain_malloc+free|inside domain_malloc+free|outside malloc+free|in|a|capturing|domain glibc|malloc+free jemalloc|mallocx+dallocx pkalloc|malloc+free sodium_malloc+sodium_free CRYPTO_secure_malloc+clear_free domain_malloc+free|inside|empty|domain CRYPTO_secure_malloc+clear_free|empty|heap"
name(i) = unbar(word(series, i))
# The two "empty" series dashed, in colours of their own.
set linetype 9 lc rgb "#9400d3" dt 2 pt 8
set linetype 10 lc rgb "#555555" dt 2 pt 10
plot for [i=1:words(series)] named(res, "alloc", name(i)) using 3:5 with linespoints lt i lw 2 title name(i)
unset xlabel

# 3. Scaling ---------------------------------------------------------------
set title "3. Scaling: throughput relative to one thread"
set logscale xy 2
set xrange [1:16]
set xtics (1, 2, 4, 8, 16)
set xlabel "threads"
set yrange [*:*]
set key at graph 0.35, graph 0.88 font "sans,8"
ncpu = system(sprintf("head -n 1 %s | sed 's/.*cpus=\\([0-9]*\\).*/\\1/'", res)) + 0
plot x with lines dt 2 lc rgb "gray" title "ideal", \
     ncpu with lines dt 3 lc rgb "black" title sprintf("%d CPUs", ncpu), \
     12 with lines dt 4 lc rgb "red" title "goal at 16 threads: 12x", \
     for [s in "own|domain|per|thread one|shared|domain pkalloc|malloc+free|no|domain"] \
        sprintf("< awk -F, '$1==\"scale\" && $2==\"%s\"' %s", unbar(s), rat) \
        using 3:6 with linespoints lw 2 title unbar(s)
unset xlabel

# 4. Many domains ----------------------------------------------------------
set xrange [*:*]
set title "4. enter+exit in round robin over N of 1000 domains (ns)"
unset logscale
set logscale x
set logscale y
set xtics (1, 14, 64, 256, 1000)
set xlabel "domains in the ring"
set ylabel "ns"
set y2label "key evictions per enter"
set y2range [0:1.2]
set y2tics 0.2
set key default
set key top left font "sans,8"
plot named(res, "domains", "enter+exit round robin") using 3:5 with linespoints lw 2 pt 7 title "enter+exit (ns)", \
     named(res, "domains", "key evictions per enter") using 3:5 axes x1y2 with linespoints lw 1 dt 2 pt 6 title "key evictions per enter"
unset ylabel
unset y2label
unset y2tics
unset xlabel

# 5. Memory ----------------------------------------------------------------
set title "5. Live 32-byte secrets before a failure or the cap (log)"
unset key
unset logscale
set logscale y
set xtics rotate by 15 right font "sans,8"
set boxwidth 0.5
plot sprintf("< awk -F, '$1==\"memory\" && $2 ~ /^live/' %s", res) using 0:5:xtic(2) with boxes lc rgb "#228833", \
     "" using 0:5:(sprintf("%.0f", $5)) with labels offset 0,0.7 font "sans,8"

# 6. Whole programs --------------------------------------------------------
set title "6. Whole programs: time relative to LD_PRELOAD=libjemalloc"
unset logscale
set xtics norotate font "sans,9"
set boxwidth 0.25
set yrange [0:*]
set key default
set key top left font "sans,8"
plot 1.05 with lines dt 2 lc rgb "red" title "goal: pkalloc at most 1.05x", \
     against("workload", "pkalloc", "jemalloc") using ($0-0.15):6:xtic(3) with boxes lc rgb "#aa3377" title "pkalloc / jemalloc", \
     sprintf("< awk -F, '$1==\"workload\" && $2==\"jemalloc\" && $4==\"glibc\"' %s", rat) using ($0+0.15):(1/$6) with boxes lc rgb "#66ccee" title "glibc / jemalloc"

unset multiplot
