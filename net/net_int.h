/*
 * net/net_int.h - what the HTTP client and the mail sender share: the
 * address check run as each socket opens (http.c).
 */
#ifndef NET_NET_INT_H
#define NET_NET_INT_H

#include "base/base.h"
#include "net/net.h"

#include <curl/curl.h>

/* The state of net_open_socket() for one transfer. */
struct net_guard {
    bool allow_loopback;
    bool refused;  /* OUT: an address was refused */
    char why[128]; /* OUT: which kind, e.g. "a link-local address" */
};

/*
 * libcurl's CURLOPT_OPENSOCKETFUNCTION, `clientp` a struct net_guard:
 * refuses link-local and cloud metadata, unspecified, multicast and (unless
 * allowed) loopback addresses, on the address actually being connected.
 */
curl_socket_t net_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr);

#endif
