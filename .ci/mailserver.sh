#!/usr/bin/env bash
# A loopback-only Postfix + Dovecot for the bounce tests: mail for the test domain is delivered to local
# Maildirs, nothing is relayed or leaves the machine. Idempotent; run as root. Writes what the tests
# need to know (ports, bounce mailbox user and its generated password, CA file) to $INFO.
#
#   newsletter.test                       the test domain (a Postfix virtual mailbox domain)
#   bounces@newsletter.test               the bounce mailbox (IMAP 127.0.0.1:143 STARTTLS / 993 TLS,
#                                         POP3 127.0.0.1:110 / 995), recipient_delimiter "+" (VERP)
#   good*@newsletter.test                 delivered, all to one Maildir (.../good/)
#   deferred*@newsletter.test             refused at RCPT with 450 4.2.1 (access map)
#   refused*@newsletter.test              refused at RCPT with 550 5.1.1 (access map)
#   sink*@newsletter.test                 accepted and discarded (the SMTP benchmark)
#   anything else @newsletter.test        accepted, then bounced by Postfix with a real RFC 3464 DSN
set -euo pipefail
DOMAIN=newsletter.test
VMAIL=/var/mail/vhosts
CONF=/etc/newsletter-test
INFO=$CONF/mailserver.json
export DEBIAN_FRONTEND=noninteractive

if ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null || [ ! -x /usr/sbin/smtp-source ] \
    || [ ! -e /usr/lib/dovecot/imap ] || [ ! -e /usr/lib/dovecot/pop3 ]; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq postfix dovecot-imapd dovecot-pop3d >/dev/null
fi

getent group vmail >/dev/null || groupadd --system vmail
getent passwd vmail >/dev/null || useradd --system --gid vmail --home-dir "$VMAIL" --shell /usr/sbin/nologin vmail
install -d -o vmail -g vmail -m 0770 "$VMAIL" "$VMAIL/$DOMAIN"
install -d -m 0755 "$CONF"

# A self-signed certificate for IMAPS/POP3S and STARTTLS, made once.
if [ ! -s "$CONF/tls.key" ] || [ ! -s "$CONF/tls.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:mail.$DOMAIN" \
        -keyout "$CONF/tls.key" -out "$CONF/tls.crt" 2>/dev/null
    chmod 0600 "$CONF/tls.key"
fi
# The bounce mailbox's password: generated once, never in the repository.
if [ ! -s "$CONF/bounces.password" ]; then
    openssl rand -hex 16 >"$CONF/bounces.password"
    chmod 0600 "$CONF/bounces.password"
fi
PASSWORD=$(cat "$CONF/bounces.password")

# ---------------------------------------------------------------- Postfix
cat >"$CONF/vmailbox.regexp" <<EOF
/^bounces(\+[^@]*)?@${DOMAIN//./\\.}\$/ $DOMAIN/bounces/
/^good[-a-z0-9._]*@${DOMAIN//./\\.}\$/ $DOMAIN/good/
EOF
cat >"$CONF/transport.regexp" <<EOF
/^sink[-a-z0-9._]*@${DOMAIN//./\\.}\$/ discard:accepted and discarded (benchmarks)
EOF
cat >"$CONF/recipient_access.regexp" <<EOF
/^deferred[-a-z0-9._]*@${DOMAIN//./\\.}\$/ 450 4.2.1 Mailbox temporarily unavailable, try again later
/^refused[-a-z0-9._]*@${DOMAIN//./\\.}\$/ 550 5.1.1 Mailbox disabled for this recipient
EOF
# main.cf written whole each time from compiled-in defaults plus the lines below.
: >/etc/postfix/main.cf
postconf -e \
    "compatibility_level = 3.6" \
    "myhostname = mail.$DOMAIN" \
    "mydomain = $DOMAIN" \
    "myorigin = \$myhostname" \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8" \
    "mydestination = localhost" \
    "relayhost =" \
    "relay_domains =" \
    "default_transport = error:this test server delivers to $DOMAIN only" \
    "relay_transport = error:this test server delivers to $DOMAIN only" \
    "smtpd_relay_restrictions = reject_unauth_destination" \
    "smtpd_recipient_restrictions = check_recipient_access regexp:$CONF/recipient_access.regexp, reject_unauth_destination" \
    "smtpd_reject_unlisted_recipient = no" \
    "virtual_mailbox_domains = $DOMAIN" \
    "virtual_mailbox_base = $VMAIL" \
    "virtual_mailbox_maps = regexp:$CONF/vmailbox.regexp" \
    "virtual_uid_maps = static:$(id -u vmail)" \
    "virtual_gid_maps = static:$(id -g vmail)" \
    "recipient_delimiter = +" \
    "transport_maps = regexp:$CONF/transport.regexp" \
    "alias_maps =" \
    "alias_database =" \
    "local_recipient_maps =" \
    "biff = no" \
    "maillog_file = /var/log/postfix.log" \
    "smtpd_tls_cert_file = $CONF/tls.crt" \
    "smtpd_tls_key_file = $CONF/tls.key" \
    "smtpd_tls_security_level = may" \
    "smtp_tls_security_level = none" \
    "smtpd_client_connection_count_limit = 0" \
    "smtpd_client_message_rate_limit = 0" \
    "default_process_limit = 20" \
    "bounce_queue_lifetime = 1d" \
    "maximal_queue_lifetime = 1d"
postfix check

if postfix status >/dev/null 2>&1; then postfix reload >/dev/null 2>&1; else postfix start >/dev/null 2>&1; fi

# ---------------------------------------------------------------- Dovecot (its own config file)
printf 'bounces@%s:{PLAIN}%s\n' "$DOMAIN" "$PASSWORD" >"$CONF/dovecot.users"
chown root:dovecot "$CONF/dovecot.users" && chmod 0640 "$CONF/dovecot.users"
cat >"$CONF/dovecot.conf" <<EOF
protocols = imap pop3
listen = 127.0.0.1
base_dir = /run/dovecot-newsletter-test
log_path = /var/log/dovecot-newsletter-test.log
ssl = yes
ssl_cert = <$CONF/tls.crt
ssl_key = <$CONF/tls.key
auth_mechanisms = plain login
mail_location = maildir:$VMAIL/%d/%n
first_valid_uid = $(id -u vmail)
mail_uid = vmail
mail_gid = vmail
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $CONF/dovecot.users
}
userdb {
  driver = static
  args = uid=vmail gid=vmail home=$VMAIL/%d/%n
}
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  inet_listener imap {
    port = 143
  }
  inet_listener imaps {
    port = 993
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 110
  }
  inet_listener pop3s {
    port = 995
    ssl = yes
  }
}
EOF
if doveadm -c "$CONF/dovecot.conf" process status >/dev/null 2>&1 && [ -S /run/dovecot-newsletter-test/master ]; then
    doveadm -c "$CONF/dovecot.conf" reload
else
    dovecot -c "$CONF/dovecot.conf"
fi

for _ in $(seq 30); do
    (exec 3<>/dev/tcp/127.0.0.1/25 && exec 4<>/dev/tcp/127.0.0.1/993) 2>/dev/null && break
    sleep 0.5
done

cat >"$INFO" <<EOF
{"domain": "$DOMAIN", "smtp_host": "127.0.0.1", "smtp_port": 25,
 "imap_host": "127.0.0.1", "imap_port": 993, "imap_starttls_port": 143, "pop3_port": 995,
 "bounce_user": "bounces@$DOMAIN", "bounce_password": "$PASSWORD", "ca_file": "$CONF/tls.crt",
 "maildirs": "$VMAIL/$DOMAIN", "smtp_source": "/usr/sbin/smtp-source"}
EOF
chmod 0600 "$INFO"
