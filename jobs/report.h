/* report.h — result collection for `infoflow eval`: what the JSONL result files of a run (or of
 * merged array tasks) say, as tables and plots. Local; no MPI, no HDF5. */
#ifndef IFK_REPORT_H
#define IFK_REPORT_H

#include "status.h"

/* Reads dir/fidelity.jsonl, dir/ablation.jsonl and dir/needle.jsonl (those present; the first line
 * of each (item, method, budget, reorder, layer) counts, so merged outputs that repeat the
 * full-prefill reference are read once), writes dir/summary.md and dir/summary.csv (means with
 * 95% Student-t CIs; "–" where a column does not apply), the plot data and, where gnuplot is
 * installed, speed_accuracy.png, needle.png and ablation.png; prints summary.md to stdout. title
 * heads the summary. Errors: IFK_ERR_IO (no result file, an unwritable summary), IFK_ERR_FORMAT
 * (a line that is not a JSON object, naming FILE:LINE). */
ifk_status ifk_report_summarize(const char *dir, const char *title, int quiet);

#endif
