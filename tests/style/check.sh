#!/bin/sh
# tests/style/check.sh SRC BUILD - the layering and naming rules of
# ../shared/STYLE.md that a compiler does not check:
#  - <sqlite3.h> only in store/, <microhttpd.h> only in web/,
#    <curl/curl.h> only in net/;
#  - every .c file includes "base/base.h" first;
#  - dependencies run one way: web, cli -> lti, awards, store, backends, images, net -> base
#    (awards -> backends -> net; images and net are leaves above base);
#  - every header compiles on its own;
#  - every exported symbol carries its module's prefix.
set -u
src=$1
build=$2
fail=0
passed=0
bad() { echo "style: $*"; fail=$((fail + 1)); }

cd "$src" || exit 2
files=$(ls base/*.[ch] lti/*.[ch] store/*.[ch] awards/*.[ch] backends/*.[ch] net/*.[ch] images/*.[ch] web/*.[ch] cli/*.[ch] 2>/dev/null)

for f in $files; do
    case $f in store/*) ;; *) grep -q '#include <sqlite3.h>' "$f" && bad "$f includes <sqlite3.h> outside store/" ;; esac
    case $f in web/*) ;; *) grep -q '#include <microhttpd.h>' "$f" && bad "$f includes <microhttpd.h> outside web/" ;; esac
    case $f in net/*) ;; *) grep -q '#include <curl/curl.h>' "$f" && bad "$f includes <curl/curl.h> outside net/" ;; esac
    case $f in
    *.c)
        first=$(grep -m1 '^#include' "$f")
        [ "$first" = '#include "base/base.h"' ] || bad "$f does not include \"base/base.h\" first"
        ;;
    esac
    mod=${f%%/*}
    for inc in $(grep -o '#include "[a-z]*/' "$f" | sed 's/#include "//; s/\///'); do
        [ "$inc" = "$mod" ] && continue
        case "$mod:$inc" in
        *:base) ;;
        web:lti | web:awards | web:store | web:backends | web:net | web:images) ;;
        cli:lti | cli:awards | cli:store | cli:backends | cli:web | cli:net | cli:images) ;;
        awards:store | awards:backends | awards:lti | awards:net | awards:images) ;;
        backends:net | backends:images) ;;
        *) bad "$f ($mod/) includes from $inc/: dependencies run web, cli -> lti, awards, store, backends, images, net -> base" ;;
        esac
    done
    # other modules include only the public header X/X.h
    for h in $(grep -o '#include "[a-z]*/[a-z_]*\.h"' "$f" | sed 's/#include "//; s/"//'); do
        hm=${h%%/*}
        [ "$hm" = "$mod" ] && continue
        [ "$hm" = base ] && continue
        [ "$h" = "$hm/$hm.h" ] || bad "$f includes $h: other modules include only $hm/$hm.h"
    done
done
passed=$((passed + 1))

# each header compiles on its own
for h in $(ls base/*.h lti/*.h store/*.h web/*.h cli/*.h awards/*.h backends/*.h net/*.h images/*.h 2>/dev/null); do
    case $h in base/banned.h | base/limits.h | base/err.h | base/alloc.h | base/str.h | base/buf.h | base/arena.h | base/form.h | base/util.h)
        # base's pieces are meant to be used through base/base.h
        pre='#include "base/base.h"' ;;
    *) pre='' ;;
    esac
    printf '%s\n#include "%s"\n#include "%s"\n' "$pre" "$h" "$h" |
        cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -I. $(pkg-config --cflags libmicrohttpd sqlite3 libxml-2.0) -x c - ||
        bad "$h does not compile on its own (or twice)"
done
passed=$((passed + 1))

# exported symbols carry their module's prefix
for lib in base lti store awards backends net images web cli; do
    a="$build/liblb_$lib.a"
    [ -f "$a" ] || { bad "$a not built"; continue; }
    case $lib in
    base) re='^(buf|str|err|arena|form|util|log)_|^(xmalloc|xcalloc|xrealloc|xstrdup|xmemdupz|st_add|st_mult|base_bug|base_version)$' ;;
    awards) re='^awards?_' ;;
    backends) re='^backend_' ;;
    images) re='^images?_' ;;
    *) re="^${lib}_" ;;
    esac
    # (AddressSanitizer adds __odr_asan.NAME for each exported variable)
    for sym in $(nm -g --defined-only "$a" 2>/dev/null | awk 'NF==3 && $3 !~ /^__odr_asan/ {print $3}'); do
        echo "$sym" | grep -Eq "$re" || bad "$a exports '$sym' without the '$lib' prefix"
    done
done
passed=$((passed + 1))

if [ $fail -ne 0 ]; then
    echo "style: $fail problem(s)"
    exit 1
fi
echo "style: layering, headers and symbol prefixes: $passed passed, 0 failed"
