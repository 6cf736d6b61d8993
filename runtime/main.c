#include "rt.h"

int main(int argc, char **argv) { return rt_main(&lobe_model_desc, argc, argv); }
