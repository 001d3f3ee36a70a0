# shellcheck shell=bash
# The CA bundle the image's REQUESTS_CA_BUNDLE and SSL_CERT_FILE name (so kernels, terminals
# and `docker exec` shells all use it): the system CAs, plus OPENBIS_CA_CERT (PEM text of the
# CA that signed an internal openBIS certificate) when given. Verification stays on: pyBIS
# uses requests, which reads REQUESTS_CA_BUNDLE; SSL_CERT_FILE covers Python's ssl module and
# other OpenSSL users. Rewritten on every start (rm first: a new file gets mode 0600).
(umask 077 && mkdir -p "$HOME/.pybis" && rm -f "$REQUESTS_CA_BUNDLE" \
    && cat /etc/ssl/certs/ca-certificates.crt - <<<"${OPENBIS_CA_CERT:-}" >"$REQUESTS_CA_BUNDLE")
