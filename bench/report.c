/*
 * The results of one run: rows, ratios between rows, the goals those
 * ratios are held against, and the files they are written to:
 *   results.csv  one line per row (median, min, max; "n/a" rows have a note)
 *   ratios.csv   one line per ratio, with its goal and verdict if it has one
 *   results.md   the same as Markdown tables, section by section
 * Ratios are always median over median of two rows of this run.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_ROWS = 512, MAX_RATIOS = 256, MAX_SECTIONS = 8, MAX_LINES = 64 };

struct ratio {
	char section[12], name[64], param[24], bname[64], bparam[24];
	double r;             /* NAN when either row is n/a */
	char goal[12];        /* "<=1.2", ">=12" or "" */
	char goal_text[96];
	const char *verdict;  /* "met", "MISSED", "n/a" or NULL without a goal */
};

struct section {
	char id[12], title[96], param_label[24];
	char *text;
	char *lines[MAX_LINES];
	int nlines;
};

static struct row rows[MAX_ROWS];
static int nrows;
static struct ratio ratios[MAX_RATIOS];
static int nratios;
static struct section sections[MAX_SECTIONS];
static int nsections;
static int errors;

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

void bench_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	errors++;
}

int bench_errors(void)
{
	return errors;
}

static struct section *section_of(const char *id)
{
	for (int i = 0; i < nsections; i++)
		if (strcmp(sections[i].id, id) == 0)
			return &sections[i];
	return NULL;
}

void section_title(const char *id, const char *title, const char *param_label, const char *text)
{
	struct section *s = section_of(id);
	if (!s) {
		if (nsections == MAX_SECTIONS) {
			bench_error("too many sections");
			return;
		}
		s = &sections[nsections++];
	}
	copy(s->id, sizeof s->id, id);
	copy(s->title, sizeof s->title, title);
	copy(s->param_label, sizeof s->param_label, param_label);
	free(s->text);
	s->text = strdup(text);
	fprintf(stderr, "bench: %s\n", title);
}

void section_line(const char *id, const char *fmt, ...)
{
	struct section *s = section_of(id);
	char *line;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (!s || n < 0 || s->nlines == MAX_LINES) {
		bench_error("no room for a line of section %s", id);
		return;
	}
	s->lines[s->nlines++] = line;
	fprintf(stderr, "  %s\n", line);
}

static struct row *new_row(const char *section, const char *name, const char *param,
                           const char *unit)
{
	if (nrows == MAX_ROWS) {
		bench_error("too many rows");
		static struct row spare;
		return &spare;
	}
	if (find_row(section, name, param))
		bench_error("row %s/%s/%s recorded twice", section, name, param);
	struct row *r = &rows[nrows++];
	memset(r, 0, sizeof *r);
	copy(r->section, sizeof r->section, section);
	copy(r->name, sizeof r->name, name);
	copy(r->param, sizeof r->param, param && *param ? param : "-");
	copy(r->unit, sizeof r->unit, unit);
	return r;
}

/* Figures the way a reader wants them: few digits, no exponent. */
static const char *fmt_num(char *buf, size_t len, double v)
{
	double a = fabs(v);
	if (isnan(v))
		snprintf(buf, len, "n/a");
	else if (a >= 1e5 || v == floor(v))
		snprintf(buf, len, "%.0f", v);
	else if (a >= 100)
		snprintf(buf, len, "%.1f", v);
	else if (a >= 1)
		snprintf(buf, len, "%.2f", v);
	else
		snprintf(buf, len, "%.3g", v);
	return buf;
}

struct row *record(const char *section, const char *name, const char *param,
                   const char *unit, double *samples, int n, long long ops)
{
	struct row *r = new_row(section, name, param, unit);
	for (int i = 0; i < n; i++)
		if (!isfinite(samples[i]) || samples[i] < 0) {
			bench_error("%s/%s/%s: %g is not a figure", section, name, r->param, samples[i]);
			samples[i] = NAN;
		}
	r->med = median_of(samples, n);   /* sorts samples */
	r->lo = samples[0];
	r->hi = samples[n - 1];
	r->reps = n;
	r->ops = ops;
	char a[32], b[32], c[32];
	fprintf(stderr, "  %-40s %-10s %12s %-8s (%s..%s)\n", name, r->param,
	        fmt_num(a, sizeof a, r->med), unit, fmt_num(b, sizeof b, r->lo),
	        fmt_num(c, sizeof c, r->hi));
	return r;
}

struct row *record_na(const char *section, const char *name, const char *param,
                      const char *unit, const char *fmt, ...)
{
	struct row *r = new_row(section, name, param, unit);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->note, sizeof r->note, fmt, ap);
	va_end(ap);
	r->na = 1;
	r->med = r->lo = r->hi = NAN;
	fprintf(stderr, "  %-40s %-10s %s\n", name, r->param, r->note);
	return r;
}

void row_note(struct row *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->note, sizeof r->note, fmt, ap);
	va_end(ap);
}

struct row *find_row(const char *section, const char *name, const char *param)
{
	const char *p = param && *param ? param : "-";
	for (int i = 0; i < nrows; i++)
		if (strcmp(rows[i].section, section) == 0 && strcmp(rows[i].name, name) == 0 &&
		    strcmp(rows[i].param, p) == 0)
			return &rows[i];
	return NULL;
}

void ratio(const char *section, const char *name, const char *param,
           const char *bname, const char *bparam, const char *goal, const char *goal_text)
{
	struct row *a = find_row(section, name, param), *b = find_row(section, bname, bparam);
	if (!a || !b) {
		bench_error("ratio of missing rows: %s/%s/%s over %s/%s", section, name,
		            param ? param : "-", bname, bparam ? bparam : "-");
		return;
	}
	if (nratios == MAX_RATIOS) {
		bench_error("too many ratios");
		return;
	}
	struct ratio *q = &ratios[nratios++];
	memset(q, 0, sizeof *q);
	copy(q->section, sizeof q->section, section);
	copy(q->name, sizeof q->name, a->name);
	copy(q->param, sizeof q->param, a->param);
	copy(q->bname, sizeof q->bname, b->name);
	copy(q->bparam, sizeof q->bparam, b->param);
	q->r = a->na || b->na || b->med <= 0 ? NAN : a->med / b->med;
	if (goal) {
		copy(q->goal, sizeof q->goal, goal);
		copy(q->goal_text, sizeof q->goal_text, goal_text);
		double limit = atof(goal + 2);
		if (isnan(q->r))
			q->verdict = "n/a";
		else if (strncmp(goal, "<=", 2) == 0)
			q->verdict = q->r <= limit ? "met" : "MISSED";
		else
			q->verdict = q->r >= limit ? "met" : "MISSED";
	}
}

/* "0.05x (1/20)": a ratio under one is easier read as a fraction. */
static const char *fmt_ratio(char *buf, size_t len, double r)
{
	char a[32], b[32];
	if (isnan(r))
		snprintf(buf, len, "n/a");
	else if (r < 1 && r > 0)
		snprintf(buf, len, "%sx (1/%s)", fmt_num(a, sizeof a, r), fmt_num(b, sizeof b, 1 / r));
	else
		snprintf(buf, len, "%sx", fmt_num(a, sizeof a, r));
	return buf;
}

/* CSV fields never hold a comma or a line break. */
static void csv_field(FILE *f, const char *s, int last)
{
	for (; *s; s++)
		fputc(*s == ',' ? ';' : *s == '\n' ? ' ' : *s, f);
	fputc(last ? '\n' : ',', f);
}

static void csv_num(FILE *f, double v)
{
	if (isnan(v))
		fputs("n/a,", f);
	else
		fprintf(f, "%.10g,", v);
}

static int write_csv(const char *dir, const char *machine_csv)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/results.csv", dir);
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return -1;
	}
	fprintf(f, "# %s\n", machine_csv);
	fputs("section,name,param,unit,median,min,max,reps,ops,note\n", f);
	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		csv_field(f, r->section, 0);
		csv_field(f, r->name, 0);
		csv_field(f, r->param, 0);
		csv_field(f, r->unit, 0);
		csv_num(f, r->med);
		csv_num(f, r->lo);
		csv_num(f, r->hi);
		fprintf(f, "%d,%lld,", r->reps, r->ops);
		csv_field(f, r->note, 1);
	}
	if (fclose(f) != 0) {
		perror(path);
		return -1;
	}
	snprintf(path, sizeof path, "%s/ratios.csv", dir);
	if (!(f = fopen(path, "w"))) {
		perror(path);
		return -1;
	}
	fprintf(f, "# %s\n", machine_csv);
	fputs("section,name,param,baseline,baseline_param,ratio,goal,verdict,goal_text\n", f);
	for (int i = 0; i < nratios; i++) {
		const struct ratio *q = &ratios[i];
		csv_field(f, q->section, 0);
		csv_field(f, q->name, 0);
		csv_field(f, q->param, 0);
		csv_field(f, q->bname, 0);
		csv_field(f, q->bparam, 0);
		csv_num(f, q->r);
		csv_field(f, q->goal, 0);
		csv_field(f, q->verdict ? q->verdict : "", 0);
		csv_field(f, q->goal_text, 1);
	}
	if (fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

static const char *cell(char *buf, size_t len, const struct row *r)
{
	char a[32], b[32], c[32];
	if (r->na)
		snprintf(buf, len, "%s", r->note);
	else if (r->reps > 1 && r->lo != r->hi)
		snprintf(buf, len, "%s (%s..%s)", fmt_num(a, sizeof a, r->med),
		         fmt_num(b, sizeof b, r->lo), fmt_num(c, sizeof c, r->hi));
	else
		snprintf(buf, len, "%s", fmt_num(a, sizeof a, r->med));
	return buf;
}

/* Does the section have rows of more than one param?  Then a grid: one
 * line per name and unit, one column per param. */
static int distinct_params(const struct section *s, const char *params[], int max)
{
	int n = 0;
	for (int i = 0; i < nrows; i++) {
		if (strcmp(rows[i].section, s->id) != 0)
			continue;
		int seen = 0;
		for (int j = 0; j < n; j++)
			seen |= strcmp(params[j], rows[i].param) == 0;
		if (!seen && n < max)
			params[n++] = rows[i].param;
	}
	return n;
}

static void md_grid(FILE *f, const struct section *s, const char *params[], int np)
{
	fprintf(f, "| %s | unit |", s->param_label);
	for (int j = 0; j < np; j++)
		fprintf(f, " %s |", params[j]);
	fputs("\n|---|---|", f);
	for (int j = 0; j < np; j++)
		fputs("---:|", f);
	fputc('\n', f);
	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		if (strcmp(r->section, s->id) != 0)
			continue;
		int first = 1;   /* print each name/unit line once, at its first row */
		for (int k = 0; k < i; k++)
			if (strcmp(rows[k].section, s->id) == 0 && strcmp(rows[k].name, r->name) == 0 &&
			    strcmp(rows[k].unit, r->unit) == 0)
				first = 0;
		if (!first)
			continue;
		fprintf(f, "| %s | %s |", r->name, r->unit);
		for (int j = 0; j < np; j++) {
			const struct row *c = NULL;
			for (int k = 0; k < nrows; k++)
				if (strcmp(rows[k].section, s->id) == 0 && strcmp(rows[k].name, r->name) == 0 &&
				    strcmp(rows[k].unit, r->unit) == 0 && strcmp(rows[k].param, params[j]) == 0)
					c = &rows[k];
			char buf[160];
			fprintf(f, " %s |", c ? cell(buf, sizeof buf, c) : "");
		}
		fputc('\n', f);
	}
}

static void md_list(FILE *f, const struct section *s)
{
	fputs("| measurement | value (min..max) | unit | note |\n|---|---:|---|---|\n", f);
	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		if (strcmp(r->section, s->id) != 0)
			continue;
		char buf[160];
		fprintf(f, "| %s | %s | %s | %s |\n", r->name, r->na ? "n/a" : cell(buf, sizeof buf, r),
		        r->unit, r->note);
	}
}

static void md_ratios(FILE *f, const struct section *s)
{
	int any = 0;
	for (int i = 0; i < nratios; i++) {
		const struct ratio *q = &ratios[i];
		if (strcmp(q->section, s->id) != 0)
			continue;
		if (!any++)
			fputs("\n| ratio of | against | = | goal |\n|---|---|---:|---|\n", f);
		char buf[64];
		char of[96], against[96];
		snprintf(of, sizeof of, "%s%s%s", q->name, strcmp(q->param, "-") ? " @ " : "",
		         strcmp(q->param, "-") ? q->param : "");
		snprintf(against, sizeof against, "%s%s%s", q->bname, strcmp(q->bparam, "-") ? " @ " : "",
		         strcmp(q->bparam, "-") ? q->bparam : "");
		fprintf(f, "| %s | %s | %s | %s%s%s |\n", of, against,
		        fmt_ratio(buf, sizeof buf, q->r), q->goal, q->verdict ? ": " : "",
		        q->verdict ? q->verdict : "");
	}
}

static void md_goals(FILE *f)
{
	int any = 0;
	for (int i = 0; i < nratios; i++)
		any |= ratios[i].verdict != NULL;
	if (!any)
		return;
	fputs("## Goals\n\nTargets, not tests: each is a ratio of two figures of this run.\n\n"
	      "| goal | ratio | = | verdict |\n|---|---|---:|---|\n", f);
	for (int i = 0; i < nratios; i++) {
		const struct ratio *q = &ratios[i];
		if (!q->verdict)
			continue;
		char buf[64];
		fprintf(f, "| %s | %s%s%s / %s%s%s | %s | %s |\n", q->goal_text, q->name,
		        strcmp(q->param, "-") ? " @ " : "", strcmp(q->param, "-") ? q->param : "",
		        q->bname, strcmp(q->bparam, "-") ? " @ " : "", strcmp(q->bparam, "-") ? q->bparam : "",
		        fmt_ratio(buf, sizeof buf, q->r), q->verdict);
	}
}

/* Sections run in the order that suits the measurements (bench.c) and are
 * written in the order of their numbered titles. */
static int by_title(const void *a, const void *b)
{
	return strcmp(((const struct section *)a)->title, ((const struct section *)b)->title);
}

static void write_md(FILE *f, const char *machine_md)
{
	qsort(sections, (size_t)nsections, sizeof sections[0], by_title);
	fprintf(f, "# pkalloc benchmark results\n\n%s\n", machine_md);
	for (int i = 0; i < nsections; i++) {
		const struct section *s = &sections[i];
		const char *params[32];
		fprintf(f, "## %s\n\n%s\n\n", s->title, s->text);
		if (distinct_params(s, params, 32) > 1)
			md_grid(f, s, params, distinct_params(s, params, 32));
		else
			md_list(f, s);
		md_ratios(f, s);
		if (s->nlines)
			fputc('\n', f);
		for (int j = 0; j < s->nlines; j++)
			fprintf(f, "- %s\n", s->lines[j]);
		fputc('\n', f);
	}
	md_goals(f);
}

int report_write(const char *dir, const char *machine_md, const char *machine_csv)
{
	if (write_csv(dir, machine_csv) != 0)
		return -1;
	char path[4096];
	snprintf(path, sizeof path, "%s/results.md", dir);
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return -1;
	}
	write_md(f, machine_md);
	if (fclose(f) != 0) {
		perror(path);
		return -1;
	}
	write_md(stdout, machine_md);
	return 0;
}
