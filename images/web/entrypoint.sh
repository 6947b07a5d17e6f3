#!/bin/sh
# Entry point of the hebi-web image: renders the session's nginx config into a writable folder (the root
# filesystem is read-only in a pod) and runs nginx in the foreground. Arguments go to nginx, so
# `podman run IMAGE -t` checks the rendered config. Environment (defaults are the pod's loopback ports):
#   HEBI_NGINX_LISTEN  address nginx listens on        (8080)
#   HEBI_NGINX_API     the API's address               (127.0.0.1:8081)
#   HEBI_NGINX_DATA    the dataserver's address        (127.0.0.1:8082)
#   HEBI_NGINX_PREFIX  writable folder for pid, temp   (/tmp/nginx)
#   HEBI_NGINX_BODY_TIMEOUT  seconds (60)
set -eu
prefix=${HEBI_NGINX_PREFIX:-/tmp/nginx}
mkdir -p "$prefix"
python3 -m hebi_common.nginx_conf /opt/hebi-web/session.conf.template "$prefix/nginx.conf" \
  "LISTEN=${HEBI_NGINX_LISTEN:-8080}" "API=${HEBI_NGINX_API:-127.0.0.1:8081}" \
  "DATA=${HEBI_NGINX_DATA:-127.0.0.1:8082}" "WEB_ROOT=/opt/hebi-web/dist" "PREFIX=$prefix" \
  "MIME_TYPES=/etc/nginx/mime.types" "BODY_TIMEOUT=${HEBI_NGINX_BODY_TIMEOUT:-60}"
exec nginx -p "$prefix" -c "$prefix/nginx.conf" -e stderr "$@"
