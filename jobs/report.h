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

/* Removes from dir every file an eval writes (the result files fidelity.jsonl, needle.jsonl,
 * ablation.jsonl and all that ifk_report_summarize derives from them: summary.md, summary.csv,
 * frontier.csv, plots.gp, the .dat files, the plots), so that a job's out holds only its own
 * results: an eval owns its out directory's result files and replaces them all (docs/eval.md).
 * Files that are not eval's are kept. Errors: IFK_ERR_IO (a file that cannot be removed). */
ifk_status ifk_report_clear(const char *dir);

#endif
