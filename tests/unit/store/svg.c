/*
 * tests/unit/store/svg.c - the SVG rule at the store: every way a
 * BadgeClass image is written (create, update, set_image) refuses an SVG
 * the rule (image_svg_sanitize) would change, and a type that is neither
 * PNG nor SVG; without a rule no SVG is stored. Migration 7 runs the images
 * a version-6 database holds (written straight into sqlite, as the old CLI
 * check let them through) through the rule: hostile ones cleaned, one it
 * cannot read replaced by the fallback, benign ones and PNGs byte for byte
 * as they were, and the counts said; without a rule it fails and changes
 * nothing.
 */
#include "base/base.h"
#include "images/images.h"
#include "store/store.h"

#include <sqlite3.h>
#include <setjmp.h>
#include <cmocka.h>
#include "tests/unit/store/dbfile.h"
#include <unistd.h>

#define FALLBACK "<svg xmlns=\"http://www.w3.org/2000/svg\"><title>fallback</title></svg>"
#define OPEN                                                                                       \
 "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\">"
#define CIRCLE "<circle r=\"5\"/>"

static const struct store_svg_rule rule = { image_svg_sanitize, FALLBACK };

/* the three payloads of the issue, as the old CLI check let them through */
static const char *const hostile[] = {
    OPEN "<style>@import url(https://evil.example/x.css);</style>" CIRCLE "</svg>",
    OPEN "<a xlink:href=\"#c\"><set attributeName=\"href\" to=\"javascript:alert(1)\"/>" CIRCLE
         "</a></svg>",
    OPEN "<rect width=\"5\" fill=\"url(https://evil.example/p.svg#x)\"/>" CIRCLE "</svg>",
};
/* a comment and single quotes: what the rule keeps stays byte for byte */
static const char benign[] = "<svg xmlns='http://www.w3.org/2000/svg'><!-- made by hand -->"
                             "<defs><linearGradient id='g'/></defs><rect fill='url(#g)'/></svg>";

static int setup(void **state)
{
    (void)state;
    dbfile_new("svg-");
    store_set_svg_rule(&rule);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dbfile_remove();
    store_set_svg_rule(&rule);
    return 0;
}

/* The stored image of `slug` (malloc'd, NUL-terminated). */
static char *peek_image(const char *slug)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *v = NULL;

    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT image FROM badge_classes WHERE slug = ?", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, slug, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = xmemdupz(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A BadgeClass row as an older version wrote it, straight into sqlite. */
static void poke_badge(int64_t consumer_id, const char *slug, const char *image, const char *type)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO badge_classes(slug, consumer_id, name, "
                                        "description, image, image_type, backend, created_at, "
                                        "updated_at) VALUES (?1, ?2, 'n', 'd', ?3, ?4, 'hosted', "
                                        "1, 1)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, slug, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, consumer_id);
    sqlite3_bind_blob(st, 3, image, (int)strlen(image), SQLITE_STATIC);
    sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void fill_badge(struct store_badge_new *b, int64_t consumer_id, const char *slug,
                       const char *image, const char *type)
{
    memset(b, 0, sizeof(*b));
    b->consumer_id = consumer_id;
    b->slug = slug;
    b->name = "Vector";
    b->description = "d";
    b->image = (const unsigned char *)image;
    b->image_len = strlen(image);
    b->image_type = type;
    b->backend = "hosted";
    b->rule.kind = RULE_MANUAL;
}

static void writes_refuse_what_the_rule_changes(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_badge_new b;
    char slug[LIMIT_SLUG_LEN + 1];
    int64_t id = 0, benign_id = 0;
    char *img;

    (void)state;
    assert_int_equal(store_open(&s, dbpath, 0, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "LMS", &c, &err), 0);
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        fill_badge(&b, c.id, "hostile", hostile[i], "image/svg+xml");
        err_clear(&err);
        if (store_badge_create(s, &b, &id, slug, &err) != -1 || err.code != ERR_INVALID ||
            !strstr(err.msg, "could run code or load other files"))
            fail_msg("payload %zu: stored (%d '%s')", i, (int)err.code, err.msg);
    }
    fill_badge(&b, c.id, "html", "<p>hi</p>", "text/html");
    err_clear(&err);
    assert_int_equal(store_badge_create(s, &b, &id, slug, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_int_equal(peek_int("SELECT count(*) FROM badge_classes"), 0);

    /* what the rule leaves as it is goes in as given; a PNG is not the rule's */
    fill_badge(&b, c.id, "benign", benign, "image/svg+xml");
    err_clear(&err);
    assert_int_equal(store_badge_create(s, &b, &benign_id, slug, &err), 0);
    img = peek_image("benign");
    assert_string_equal(img, benign);
    free(img);
    fill_badge(&b, c.id, "png", "\x89PNG\r\n\x1a\n", "image/png");
    assert_int_equal(store_badge_create(s, &b, &id, slug, &err), 0);

    /* replacing the image: the same rule */
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        err_clear(&err);
        assert_int_equal(store_badge_set_image(s, "benign", (const unsigned char *)hostile[i],
                                               strlen(hostile[i]), "image/svg+xml", &err),
                         -1);
        assert_int_equal(err.code, ERR_INVALID);
    }
    err_clear(&err);
    assert_int_equal(store_badge_set_image(s, "png", (const unsigned char *)benign, strlen(benign),
                                           "image/svg+xml", &err),
                     0);
    img = peek_image("png");
    assert_string_equal(img, benign);
    free(img);
    assert_int_equal(store_badge_set_image(s, "nosuch", (const unsigned char *)benign,
                                           strlen(benign), "image/svg+xml", &err),
                     -1);
    assert_int_equal(err.code, ERR_NOTFOUND);

    /* an edit (store_badge_update needs a course: the editor's) */
    err_clear(&err);
    fill_badge(&b, c.id, NULL, benign, "image/svg+xml");
    b.slug_base = "course";
    b.lti_context_id = "c1";
    assert_int_equal(store_badge_create(s, &b, &id, slug, &err), 0);
    {
        struct store_badge got;
        struct arena a = ARENA_INIT;

        assert_int_equal(store_badge_get_id(s, id, &a, &got, &err), 0);
        fill_badge(&b, c.id, NULL, hostile[0], "image/svg+xml");
        assert_int_equal(store_badge_update(s, id, got.context_id, &b, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
        err_clear(&err);
        b.image = NULL; /* keeps the stored image */
        assert_int_equal(store_badge_update(s, id, got.context_id, &b, &err), 0);
        arena_release(&a);
    }
    img = peek_image(slug);
    assert_string_equal(img, benign);
    free(img);

    /* no rule, no SVG */
    store_set_svg_rule(NULL);
    fill_badge(&b, c.id, "norule", benign, "image/svg+xml");
    assert_int_equal(store_badge_create(s, &b, &id, slug, &err), -1);
    assert_int_equal(err.code, ERR_INTERNAL);
    assert_int_equal(peek_int("SELECT count(*) FROM badge_classes WHERE slug = 'norule'"), 0);
    store_close(s);
}

/* A version-6 database with the images the old check let through. */
static int64_t old_database(void)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    int applied = 0;
    char slug[16];

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_NO_MIGRATE, &err), 0);
    assert_int_equal(store_migrate_to(s, 6, &applied, &err), 0);
    assert_int_equal(applied, 6);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "LMS", &c, &err), 0);
    store_close(s);
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        snprintf(slug, sizeof(slug), "hostile-%zu", i);
        poke_badge(c.id, slug, hostile[i], "image/svg+xml");
    }
    poke_badge(c.id, "benign", benign, "image/svg+xml");
    poke_badge(c.id, "unreadable", OPEN "<g>", "image/svg+xml");
    /* not an SVG by its type: served as image/png with nosniff, never drawn as SVG */
    poke_badge(c.id, "png", hostile[0], "image/png");
    return c.id;
}

static void migration_cleans_stored_images(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    size_t checked = 9, changed = 9;
    char slug[16], *img;
    int applied = 0;

    (void)state;
    old_database();
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_NO_MIGRATE, &err), 0);
    store_svg_migrated(s, &checked, &changed);
    assert_int_equal(checked, 0);
    assert_int_equal(changed, 0);
    assert_int_equal(store_migrate(s, &applied, &err), 0);
    assert_int_equal(applied, store_schema_latest() - 6);
    store_svg_migrated(s, &checked, &changed);
    assert_int_equal(checked, 5); /* the SVG ones */
    assert_int_equal(changed, 4); /* the three hostile, the unreadable */
    store_close(s);

    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        struct buf again = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
        size_t removed = 9;

        snprintf(slug, sizeof(slug), "hostile-%zu", i);
        img = peek_image(slug);
        if (strstr(img, "evil") || strstr(img, "javascript") || strstr(img, "@import") ||
            !strstr(img, "<circle"))
            fail_msg("%s: not cleaned: %s", slug, img);
        /* what is stored now is what the rule leaves as it is */
        assert_int_equal(
            image_svg_sanitize((const unsigned char *)img, strlen(img), &again, &removed, &err), 0);
        assert_int_equal(removed, 0);
        buf_release(&again);
        free(img);
    }
    img = peek_image("benign");
    assert_string_equal(img, benign);
    free(img);
    img = peek_image("unreadable");
    assert_string_equal(img, FALLBACK);
    free(img);
    img = peek_image("png");
    assert_string_equal(img, hostile[0]);
    free(img);

    /* opening it again migrates nothing and checks nothing */
    assert_int_equal(store_open(&s, dbpath, 0, &err), 0);
    store_svg_migrated(s, &checked, &changed);
    assert_int_equal(checked, 0);
    store_close(s);
}

static void migration_without_rule_fails_whole(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    size_t checked = 9, changed = 9;
    int version = 0;
    char *img;

    (void)state;
    old_database();
    store_set_svg_rule(NULL);
    assert_int_equal(store_open(&s, dbpath, 0, &err), -1);
    assert_int_equal(err.code, ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "migration to schema version"));
    assert_non_null(strstr(err.detail, "no SVG rule"));
    /* nothing of it stayed: still version 6, the images as they were */
    err_clear(&err);
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_NO_MIGRATE, &err), 0);
    assert_int_equal(store_schema_version(s, &version, &err), 0);
    assert_int_equal(version, 6);
    store_svg_migrated(s, &checked, &changed);
    assert_int_equal(checked, 0);
    store_close(s);
    img = peek_image("hostile-0");
    assert_string_equal(img, hostile[0]);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(writes_refuse_what_the_rule_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_cleans_stored_images, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_without_rule_fails_whole, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
