/*
 * report.h - `testbench report` (result files and studies → one offline HTML page and a
 * Markdown summary) and `testbench compare` (two runs or studies, point by point, with a
 * bootstrap test of each difference). docs/REPORT.md describes both.
 */
#ifndef TB_REPORT_H
#define TB_REPORT_H

int report_main(int argc, char **argv);
int compare_main(int argc, char **argv);

#endif
