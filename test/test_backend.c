#include "test.h"
int main(void){ skip("not written yet"); }
