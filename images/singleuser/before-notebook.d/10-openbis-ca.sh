# shellcheck shell=bash
# OPENBIS_CA_CERT (PEM text of the CA that signed an internal openBIS certificate): trust it
# in addition to the system CAs, with verification kept on. pyBIS uses requests, which reads
# REQUESTS_CA_BUNDLE; SSL_CERT_FILE covers Python's ssl module and other OpenSSL users.
# The bundle is rewritten on every start (rm first: a new file gets mode 0600 from umask).
if [ -n "${OPENBIS_CA_CERT:-}" ]; then
    (umask 077 && mkdir -p "$HOME/.pybis" && rm -f "$HOME/.pybis/ca-bundle.pem" \
        && cat /etc/ssl/certs/ca-certificates.crt - <<<"$OPENBIS_CA_CERT" >"$HOME/.pybis/ca-bundle.pem") \
        && export REQUESTS_CA_BUNDLE=$HOME/.pybis/ca-bundle.pem SSL_CERT_FILE=$HOME/.pybis/ca-bundle.pem
fi
