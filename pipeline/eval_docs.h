/* eval_docs.h — the needle documents `infoflow eval` adds to its store for the needle grid:
 * needle-k is "Once upon a time, there was a <ifk_needle_animal[k]> named <ifk_needle_name[k]>.",
 * and its cue "The <animal> was named". (The documents themselves are listed, sampled and cached
 * by mpi/cmd_eval.c through the groups.) */
#ifndef IFK_EVAL_DOCS_H
#define IFK_EVAL_DOCS_H

#define IFK_NEEDLES 8
extern const char *const ifk_needle_animal[IFK_NEEDLES];
extern const char *const ifk_needle_name[IFK_NEEDLES];

#endif
