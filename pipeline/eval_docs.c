/* eval_docs.c — the needle documents' words (eval_docs.h). */
#include "eval_docs.h"

const char *const ifk_needle_animal[IFK_NEEDLES] = {"cat", "dog", "bird", "fish", "frog", "bunny", "bear", "duck"};
const char *const ifk_needle_name[IFK_NEEDLES] = {"Tim", "Sam", "Anna", "Bob", "Mia", "Lucy", "Jack", "Sara"};
