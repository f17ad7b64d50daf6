/*
 * base/limits.h - every limit of ltibadges, each with the reason for its value.
 *
 * Readers check the limit before they grow anything. Where a limit is
 * configurable, the value here is the default and the configuration bounds
 * it by the _MAX companion.
 */
#ifndef BASE_LIMITS_H
#define BASE_LIMITS_H

/*
 * A launch form from Canvas with every extension and custom parameter is
 * 2-5 KiB; Moodle with long custom parameters stays under 10 KiB. 64 KiB
 * leaves room for generous custom parameters and refuses anything else.
 */
#define LIMIT_LAUNCH_BODY_DEFAULT (64 * 1024)
/* The configurable body cap never goes beyond this: a launch is a form, not an upload. */
#define LIMIT_LAUNCH_BODY_MAX (1024 * 1024)

/* Canvas sends about 60 parameters at most; 512 is far above any real launch. */
#define LIMIT_FORM_PARAMS 512

/*
 * A request target (path + query). Launch URLs with their own query strings
 * (Moodle) and page URLs with a session token stay far below 1 KiB; a longer
 * target is answered 414 rather than cut short (a cut query would fail the
 * signature check with a misleading message). MHD's connection memory
 * (LIMIT_HTTP_CONN_MEMORY) must hold it with the headers.
 */
#define LIMIT_URI_LEN 8192

/*
 * Identifiers sent by LMSes: Canvas user ids are 40 hex digits, Open edX
 * anonymous ids 32, Moodle numbers, context ids like "course-v1:Org+Num+Run"
 * stay short. 255 is the LTI 1.1 guideline for ids and far above these.
 */
#define LIMIT_LTI_ID_LEN 255
/* Names, titles and labels shown on pages; an LMS course title is at most 255-1333 characters. */
#define LIMIT_LTI_TEXT_LEN 2048
/* URLs (outcome service, return URL): browsers cap URLs near 2 KiB in practice, be generous. */
#define LIMIT_LTI_URL_LEN 4096
/* lis_result_sourcedid: Moodle's JSON-shaped sourcedid with a HMAC is about 200 bytes. */
#define LIMIT_LTI_SOURCEDID_LEN 2048
/* roles and ext_roles: Canvas lists every institution role, a few hundred bytes. */
#define LIMIT_LTI_ROLES_LEN 4096
/* oauth_nonce: LMSes send 32-64 characters; 128 bounds what the nonce table stores. */
#define LIMIT_OAUTH_NONCE_LEN 128
/* An oauth_signature is base64 of 20 or 32 bytes: 28 or 44 characters. */
#define LIMIT_OAUTH_SIGNATURE_LEN 64
/* Consumer keys and secrets: ours are 64 hex digits; operators may choose their own. */
#define LIMIT_CONSUMER_KEY_LEN    255
#define LIMIT_CONSUMER_SECRET_LEN 255
#define LIMIT_CONSUMER_NAME_LEN   255

/* Timestamp window (RFC 5849 leaves it to the server; 300 s is the IMS guideline). */
#define LIMIT_OAUTH_WINDOW_DEFAULT 300
#define LIMIT_OAUTH_WINDOW_MAX     3600

/* A session lives long enough for a class period inside the LMS, then the learner relaunches. */
#define LIMIT_SESSION_TTL_DEFAULT (8 * 3600)
#define LIMIT_SESSION_TTL_MAX     (7 * 24 * 3600)

/* A signature base string is the body plus the URL, encoded twice at worst (x3 each). */
#define LIMIT_BASE_STRING_LEN (LIMIT_LAUNCH_BODY_MAX * 9 + LIMIT_URI_LEN * 9)

/* Rendered pages: the largest page (instructor award table) stays under 1 MiB. */
#define LIMIT_PAGE_LEN (1024 * 1024)

/* A page form's decoded values (settings, an award to many learners with their narratives). */
#define LIMIT_PAGE_FORM_BODY (64 * 1024)
/* A BadgeClass form: every field of the model and its image. */
#define LIMIT_PAGE_UPLOAD_BODY (LIMIT_BADGE_IMAGE_BYTES + 64 * 1024)
/* What a body may add to its values on the wire: multipart boundaries and part headers. */
#define LIMIT_PAGE_FORM_FRAMING (16 * 1024)
/* An e-mail confirmation link works this long (seconds). */
#define LIMIT_EMAIL_CONFIRM_TTL (48 * 3600)
/*
 * The recipient check of a public badge page: at most this many addresses
 * checked from one client, and against one badge, per window (seconds),
 * counted in the database (store_rate_take). A person checks one or two; a
 * script guessing addresses in bulk is stopped after a handful.
 */
#define LIMIT_RECIPIENT_CHECKS_CLIENT 10
#define LIMIT_RECIPIENT_CHECKS_BADGE  30
#define LIMIT_RECIPIENT_CHECK_WINDOW  600
/*
 * A rate limit's key: its kind, a space and the subject (a client address,
 * an assertion id), with room to spare.
 */
#define LIMIT_RATE_KEY_LEN 256
/*
 * Rows of ended windows a rate limit's event deletes at most: more than
 * the one row an event can add, so the table shrinks back after a burst,
 * and few enough that the event's transaction stays short.
 */
#define LIMIT_RATE_PURGE_ROWS 32
/* Confirmation mails one learner may ask for per hour. */
#define LIMIT_EMAIL_CONFIRM_PER_HOUR 5

/* HTTP worker threads: more than a few per core only adds context switches. */
#define LIMIT_HTTP_THREADS_MAX 64

/*
 * A request's header block (request line and header fields): browsers and
 * LMSes send 1-2 KiB (we set no cookies), a launch URL with its query
 * stays under LIMIT_URI_LEN. Larger is answered 431. Configurable
 * ([server] max_header) between the MIN and the MAX.
 */
#define LIMIT_HTTP_HEADER_DEFAULT (16 * 1024)
#define LIMIT_HTTP_HEADER_MIN     1024
#define LIMIT_HTTP_HEADER_MAX     (64 * 1024)
/*
 * Seconds a header block may take from the connection's start (or, on a
 * kept-alive connection, from its request line): a client that trickles
 * one byte at a time keeps MHD's idle timer alive, not this one. Answered
 * 408. Configurable ([server] header_timeout).
 */
#define LIMIT_HTTP_HEADER_TIMEOUT_DEFAULT 10
#define LIMIT_HTTP_HEADER_TIMEOUT_MAX     300
/*
 * Simultaneous connections: each idle keep-alive connection costs MHD's
 * memory pool (twice the header block's limit plus room for the answer's
 * headers: 48 KiB by default, at most 144 KiB) and a socket; 4096 x 48 KiB
 * = 192 MiB worst case, idle ones are closed.
 */
#define LIMIT_HTTP_CONNECTIONS                 4096
#define LIMIT_HTTP_CONN_MEMORY_FOR(max_header) (2 * (size_t)(max_header) + 16 * 1024)
#define LIMIT_HTTP_CONN_MEMORY                 LIMIT_HTTP_CONN_MEMORY_FOR(LIMIT_HTTP_HEADER_DEFAULT)
/* Idle connections are closed after this many seconds (slowloris). */
#define LIMIT_HTTP_CONN_TIMEOUT 30
/*
 * A connection closed while its client may still be sending (a 413 or a
 * framing refused before the body was read) is half-closed after its
 * answer and drained this long, or this many bytes: closing with unread
 * data sends a reset that can destroy the answer before the client reads
 * it. Apache lingers 2 s. At most LIMIT_HTTP_LINGERING at a time; beyond,
 * connections are closed at once.
 */
/*
 * A chunked body has no length to refuse it by before it is read, and MHD
 * 0.9.75 cannot answer before a body ends: past its route's limit it is
 * dropped as it comes, so that a client sending a few MiB too many still
 * gets its 413; past this much more, the connection is closed unanswered
 * (a stream without end would be read forever).
 */
#define LIMIT_HTTP_DROP_BYTES   (16 * 1024 * 1024)
#define LIMIT_HTTP_LINGER_MS    2000
#define LIMIT_HTTP_LINGER_BYTES (4 * 1024 * 1024)

/* Address ranges in [server] metrics_allow: a few scrapers' networks, not an ACL engine. */
#define LIMIT_METRICS_ALLOW 64
/* Address ranges in [server] trusted_proxies: a site's proxies and load balancers. */
#define LIMIT_TRUSTED_PROXIES 64
/* URLs in [server] former_public_urls: each move of the tool adds one. */
#define LIMIT_FORMER_URLS    16
#define LIMIT_HTTP_LINGERING 1024

/*
 * Group commit: launches waiting for the writer are committed together; a
 * batch is bounded so that one transaction never holds the write lock for
 * long (about 60 us per launch: 256 launches is about 15 ms).
 */
#define LIMIT_STORE_BATCH 256
/* Launches queued for the writer before new ones are refused with 503. */
#define LIMIT_STORE_QUEUE 8192
/*
 * Expired nonces and sessions removed per chunk of a purge (every 100 ms, up to
 * four chunks of each while they come full): bounded work per batch, and up to
 * 160 000 a second of each, more than launches come in.
 */
#define LIMIT_STORE_PURGE_PER_BATCH 4096
/*
 * Under sustained load a passive checkpoint never quite catches up with the
 * writer, so SQLite never starts the WAL over and the file grows (and the
 * kernel zeroes every new block). Past this many pages (64 MiB) the writer
 * copies the small remainder the checkpointer left between two batches.
 * Each catch-up holds launches for a few milliseconds, so it should be rare:
 * at 15 000 launches a second the WAL grows by about 40 MiB a second. The
 * WAL file keeps this size (journal_size_limit), so it is never zeroed again.
 */
#define LIMIT_STORE_WAL_RESTART_PAGES 16384
/*
 * The writer's own checkpoint, which stalls the launches queued behind it,
 * copies at most this many pages the checkpointer left (unless the WAL
 * reached twice LIMIT_STORE_WAL_RESTART_PAGES); more, and it asks the
 * checkpointer to run first.
 */
#define LIMIT_STORE_CATCH_UP_PAGES 512
/* Readers (pages, consumer lookups) each hold a connection; more than threads is pointless. */
#define LIMIT_STORE_READERS 16
/* Busy timeout for connections that wait for the write lock (CLI while the server runs). */
#define LIMIT_STORE_BUSY_MS 5000

/* BadgeClasses: a slug fits in a URL path segment; texts are what platforms accept. */
#define LIMIT_SLUG_LEN         100
#define LIMIT_BADGE_NAME_LEN   255
#define LIMIT_BADGE_TEXT_LEN   8192
#define LIMIT_BADGE_TAGS       32
#define LIMIT_BADGE_ALIGNMENTS 32
/* Badgr refuses images over 256 KiB; a badge image is shown at a few hundred pixels. */
#define LIMIT_BADGE_IMAGE_BYTES  (256 * 1024)
#define LIMIT_BADGE_IMAGE_PIXELS 2048
/*
 * Elements nested in an SVG badge image, the root counting as one. Inkscape
 * and Illustrator files nest groups a dozen deep; the bound keeps the
 * recursive walks of images/bake.c small.
 */
#define LIMIT_SVG_DEPTH          64
#define LIMIT_BADGE_EXPIRES_DAYS 36500
#define LIMIT_GROUP_NAME_LEN     255
/* A platform's error message kept with an award. */
#define LIMIT_AWARD_ERROR_LEN 1024
/* Awards the worker claims at once, and how long a claim holds before another may retry it. */
#define LIMIT_AWARDS_CLAIM 64
#define LIMIT_AWARDS_LEASE 120
/*
 * [awards] lease, the built-in worker's claim in seconds: at least long
 * enough to issue a claim of LIMIT_AWARDS_CLAIM awards on a loaded machine
 * (a few ms each), at most an hour. On PostgreSQL it is how long awards an
 * instance that died had claimed wait for another instance.
 */
#define LIMIT_AWARDS_LEASE_MIN 5
#define LIMIT_AWARDS_LEASE_MAX 3600
/*
 * A remote platform's worker claims up to LIMIT_AWARDS_REMOTE_CLAIM awards
 * with one durable commit and sends them one at a time, recording their
 * answers together (LIMIT_AWARDS_REMOTE_RECORD_MS). A claim must outlast the attempt that
 * starts under it: at most 6 calls (a token, find and create the
 * BadgeClass, find the assertion, issue, and one retry after a renewed
 * token), each ended by its timeout, 300 s at most (the cap of a
 * [backend.NAME] timeout, backends/registry.c): LIMIT_AWARDS_REMOTE_ATTEMPT.
 * The worker starts no award of a claim once less than that is left of its
 * lease, and gives the rest back (store_award_release), as it does at a
 * stop. A restart on sqlite takes back what a killed server held at once
 * (store_award_reclaim); the lease only bounds how long a worker that
 * vanished otherwise holds its awards.
 */
#define LIMIT_AWARDS_REMOTE_CLAIM   16
#define LIMIT_AWARDS_REMOTE_ATTEMPT 1800
#define LIMIT_AWARDS_REMOTE_LEASE   2400
/* A remote worker records its answers together, at most this long after the first (ms). */
#define LIMIT_AWARDS_REMOTE_RECORD_MS 50
/* BadgeClass edits a worker sends to platforms in one pass. */
#define LIMIT_AWARDS_SYNCS 8
/*
 * The instructor's awards table: rows shown on the page (each a checkbox of
 * the revoke form, which must stay under LIMIT_FORM_PARAMS fields), and the
 * enrolled learners listed in the manual award form (each a checkbox and a
 * narrative field: 2 x 200 fields). A larger course filters by badge and
 * state, or exports to CSV.
 */
#define LIMIT_AWARDS_TABLE_ROWS 200
#define LIMIT_AWARDS_ROSTER     200
/* A learner searched in the awards table (?q=): a name or an LMS id needs far fewer bytes. */
#define LIMIT_AWARDS_SEARCH_LEN 100
/* Characters of a narrative, reason or error shown in a table cell; the CSV has them whole. */
#define LIMIT_AWARDS_CELL_CHARS 200
/* The CSV export: rows, and bytes (narratives and reasons up to LIMIT_BADGE_TEXT_LEN each). */
#define LIMIT_AWARDS_CSV_ROWS 5000
#define LIMIT_AWARDS_CSV_LEN  (16 * 1024 * 1024)
/* Retry backoff: 2^attempts seconds from this base, capped, with jitter. */
#define LIMIT_AWARDS_BACKOFF_BASE 2
#define LIMIT_AWARDS_BACKOFF_MAX  3600

/*
 * Badgr (backends/badgr.c). An OAuth token: django-oauth-toolkit's are 30
 * characters; 2 KiB leaves room for a JWT-like one. A refused grant (wrong
 * password, unknown client) is not asked again for 5 minutes, so a wrong
 * setting does not feed the platform's login back-off (2^n seconds a
 * failure, up to an hour). One answer: a page of the assertion list is at
 * most LIMIT_BADGR_PAGE_SIZE assertions of ~2 KiB; a BadgeClass echoes its
 * image as a URL, not the data. Pages of a look-up followed at most: 50 x
 * 100 assertions of one badge for one learner is far past any real case.
 * A tag: Badgr's serializer takes 1 024 characters.
 */
#define LIMIT_BADGR_TOKEN_LEN    2048
#define LIMIT_BADGR_REFUSED_WAIT 300
#define LIMIT_BADGR_ANSWER       (1024 * 1024)
#define LIMIT_BADGR_PAGE_SIZE    100
#define LIMIT_BADGR_PAGES        50
#define LIMIT_BADGR_TAG_LEN      1024

/*
 * Open Badge Factory (backends/obf.c). One answer: a page of at most
 * LIMIT_OBF_PAGE_SIZE badges or events (OBF's own maximum, 1 000) of a
 * few KiB each, or one badge echoing its image as a data URI
 * (LIMIT_BADGE_IMAGE_BYTES, a third more as base64): 8 MiB holds either.
 * Pages of a look-up followed at most (LIMIT_OBF_PAGES): 20 x 1 000 badges
 * of one client, or events of one badge for one address (v1 and v2; a
 * learner has one or a few); past it the look-up fails for good rather
 * than answer "not found", which would send again what may be unread.
 * API v1's lists are one JSON object a line: a line holds at most one
 * badge with its image as base64 (a third over LIMIT_BADGE_IMAGE_BYTES).
 */
#define LIMIT_OBF_ANSWER    (8 * 1024 * 1024)
#define LIMIT_OBF_PAGE_SIZE 1000
#define LIMIT_OBF_PAGES     20
#define LIMIT_OBF_LINE      (512 * 1024)

/*
 * Basic Outcomes messages: a replaceResult with a Canvas resultData text is
 * a few KiB; 64 KiB refuses anything else before it is parsed. Real messages
 * nest 7 levels; 32 bounds the parser's work on a hostile one.
 */
/* The tool's own sourcedids: "lb-" and 40 hex digits. */
#define LIMIT_TOOL_SOURCEDID_LEN 43
/* Passbacks the worker claims at once; reads of LMS grades per sweep. */
#define LIMIT_PASSBACK_CLAIM 32
#define LIMIT_OUTCOME_READS  64
/* A passback's lease, and the attempts before it is given up (about a day with the backoff). */
#define LIMIT_PASSBACK_LEASE    120
#define LIMIT_PASSBACK_ATTEMPTS 16
/* A learner's relaunches within this many seconds do not read their LMS grades again. */
#define LIMIT_OUTCOME_READ_GAP 30
/* Reads of every binding's LMS grade: every 15 minutes, at most 10 requests a second to one LMS. */
#define LIMIT_OUTCOME_READ_INTERVAL_DEFAULT 900
#define LIMIT_OUTCOME_RATE_DEFAULT          10.0
/* The periodic reads look for due bindings at least this often (seconds). */
#define LIMIT_OUTCOME_SWEEP_EVERY 30
#define LIMIT_POX_BODY            (64 * 1024)
#define LIMIT_POX_DEPTH           32
#define LIMIT_POX_ID_LEN          255
#define LIMIT_POX_SCORE_LEN       64
#define LIMIT_POX_DESCRIPTION_LEN 1024
/*
 * A BadgeKit hook (POST /hooks/badgekit/NAME): an award hook is one badge
 * (~2 KiB) and a few fields, so 64 KiB is ample; its Authorization header
 * (JWT token="...", a 30-byte header, a 70-byte payload, a 32-byte MAC)
 * is about 200 bytes: 2 KiB is ample too.
 */
#define LIMIT_BADGEKIT_HOOK_BODY  (64 * 1024)
#define LIMIT_BADGEKIT_HOOK_TOKEN 2048

/*
 * Requests to other servers (net/http.c). Extra request headers: a call
 * sends Accept and perhaps one or two more; 8 leaves room. A kept answer
 * header (Location, Link): a URL of up to LIMIT_LTI_URL_LEN and its
 * punctuation, or a Link to a next page (a platform's cursor URL, well under
 * that); one longer fails the call like an oversized body.
 */
#define LIMIT_HTTP_HEADERS      8
#define LIMIT_HTTP_HEADER_VALUE (LIMIT_LTI_URL_LEN + 64)

/*
 * Outgoing e-mail (address confirmation links). An address is an RFC 5321
 * path without its angle brackets: 256 octets with them, so 254; its local
 * part at most 64 octets (RFC 5321 4.5.3.1.1) and each domain label 63
 * (RFC 1035 2.3.4).
 */
#define LIMIT_MAIL_ADDRESS_LEN 254
#define LIMIT_MAIL_LOCAL_LEN   64
#define LIMIT_MAIL_LABEL_LEN   63
/* A subject is one line of a few words; translated ones with accents stay under 200 bytes. */
#define LIMIT_MAIL_SUBJECT_LEN 512
/* The sender's display name ("Open Badges, University of ..."). */
#define LIMIT_MAIL_NAME_LEN 255
/* A confirmation mail is a few hundred bytes of text and a link; 64 KiB refuses anything else. */
#define LIMIT_MAIL_BODY (64 * 1024)
/*
 * The whole message as sent: quoted-printable turns a byte into at most 3
 * (=XX) and adds a 3-byte soft break per 73 encoded bytes, so 4x the body,
 * plus the headers: the encoded subject and name take less than twice
 * their text, the other headers less than 4 KiB.
 */
#define LIMIT_MAIL_MESSAGE                                                                         \
 (4 * LIMIT_MAIL_BODY + 2 * (LIMIT_MAIL_SUBJECT_LEN + LIMIT_MAIL_NAME_LEN) + 4096)
/*
 * Waiting for the mail relay: as for an LMS's outcomes service, a relay
 * that has not answered in 5 s is not coming, and a small message is
 * handed over in well under 20 s (RFC 5321's minutes-long timeouts are
 * for relays talking to each other, not for a learner waiting on a page).
 */
#define LIMIT_MAIL_CONNECT_TIMEOUT_MS 5000
#define LIMIT_MAIL_TIMEOUT_MS         20000
/*
 * Confirmation mails taken and not answered yet, the one being sent
 * included: one thread sends them in turn while each learner's request
 * waits for its own. A send ends within LIMIT_MAIL_TIMEOUT_MS, connecting
 * included (20 s; net_mail_send() keeps that deadline even while the
 * relay is silent after the message), so with a stuck relay the last of 3
 * waits 3 x 20 s = 60 s: the time a reverse proxy gives an answer by
 * default (nginx proxy_read_timeout, Apache Timeout), past which the
 * learner would get the proxy's error page instead of ours. A working
 * relay takes a mail in well under a second, so 3 places serve several
 * requests a second; past them the learner is told at once to try again.
 * (64 places held learners, and a stopping server, for half an hour.)
 */
#define LIMIT_MAIL_QUEUE 3

/*
 * Named backends ([backend.NAME] sections): a name is [a-z0-9-]{1,32}, short
 * enough for a column of `backend list` and a metrics label. An institution
 * runs one platform, perhaps a region or a test account besides it: 16
 * sections are plenty. The keys a section may hold (every key of its type,
 * each given once, and its secrets again from the environment) and all
 * their text together are bounded so the configuration stays a fixed-size
 * struct: libinih cuts a file's lines at 200 bytes, so 32 KiB holds every
 * key of every section with room for long secrets from the environment.
 */
#define LIMIT_BACKEND_NAME_LEN       32
#define LIMIT_BACKENDS               16
#define LIMIT_BACKEND_CONFIG_ENTRIES (LIMIT_BACKENDS * 24)
#define LIMIT_BACKEND_CONFIG_BYTES   (32 * 1024)

/*
 * BadgeKit API's slugs (systems, issuers, programs, badges, instances) are
 * VARCHAR(255). One answer: a scope's badge list (`backend check`) of a few
 * hundred badges of ~2 KiB each; every other answer is one badge or one
 * instance.
 */
#define LIMIT_BADGEKIT_SLUG_LEN 255
#define LIMIT_BADGEKIT_ANSWER   (4 * 1024 * 1024)

/*
 * [database] url: a PostgreSQL URL (user, password, a host or a socket
 * folder, the database and a few parameters such as sslmode and
 * sslrootcert) fits in 1 KiB with room to spare.
 * [database] pool: connections per instance. Each is a server process of
 * PostgreSQL's (a few MB); its default max_connections is 100, so three
 * instances at the default 8 leave room for the operators' own, and more
 * than 64 per instance outnumber any machine's cores many times over.
 */
#define LIMIT_DB_URL_LEN      1024
#define LIMIT_DB_POOL_DEFAULT 8
#define LIMIT_DB_POOL_MAX     64
/*
 * A transaction PostgreSQL ended with a serialization failure or a
 * deadlock (40001, 40P01), or whose connection broke before its COMMIT, is
 * run again, whole, this many times, after 5, 20, 80 ms (and a random part
 * as long): two instances that deadlocked once seldom do it a second time,
 * and a server restarting (a second or two) is waited for no longer than a
 * request should wait; after that the caller answers 503.
 */
#define LIMIT_DB_TX_RETRIES    3
#define LIMIT_DB_TX_BACKOFF_MS 5
/*
 * How long the launch writer waits for a restarted server to learn whether a
 * batch whose COMMIT got no answer was committed (then its launches are
 * answered as recorded); past it they are answered 503.
 */
#define LIMIT_DB_IN_DOUBT_MS 5000

#endif
