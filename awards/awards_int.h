/*
 * awards/awards_int.h - what the files of awards/ share.
 */
#ifndef AWARDS_AWARDS_INT_H
#define AWARDS_AWARDS_INT_H

#include "awards/awards.h"

#include <pthread.h>

#define AWARDS_MAX_BACKENDS 8

struct awards {
    struct store *store;
    char *public_url, *issuer_name, *issuer_url, *issuer_email, *issuer_description,
        *issuer_image_url;
    char *default_email;         /* badges@HOST until [issuer] email is set */
    struct hosted_issuer issuer; /* views of the strings above */
    struct {
        char *name;
        struct backend *b;
    } backends[AWARDS_MAX_BACKENDS];
    size_t nbackends;

    pthread_t thread;
    bool started, stop, woken;
    pthread_mutex_t mu;
    pthread_cond_t cv;

    pthread_mutex_t stats_mu;
    struct awards_stats stats;
};

/* The backend registered under `name`, or NULL. */
struct backend *awards_backend(struct awards *a, const char *name);
/* A BadgeClass and an award as backends see them (views into the store structs). */
void awards_to_backend_badge(const struct store_badge *b, struct backend_badge *out);
void awards_to_backend_award(const struct store_award *w, struct backend_award *out);

#endif
