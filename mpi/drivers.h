/* drivers.h — the subcommands of the infoflow executable. Each returns the process exit code;
 * only drivers print errors and decide how the job ends. */
#ifndef IFK_DRIVERS_H
#define IFK_DRIVERS_H

int ifk_cmd_generate(int argc, char **argv);
int ifk_cmd_bench(int argc, char **argv);
int ifk_cmd_cache(int argc, char **argv);
int ifk_cmd_query(int argc, char **argv);
int ifk_cmd_eval(int argc, char **argv);
int ifk_cmd_convert(int argc, char **argv);
int ifk_cmd_logits(int argc, char **argv);
int ifk_cmd_tokenize(int argc, char **argv);
int ifk_cmd_inspect(int argc, char **argv);
int ifk_cmd_verify(int argc, char **argv);
int ifk_cmd_migrate(int argc, char **argv);
int ifk_cmd_search(int argc, char **argv);

#endif
