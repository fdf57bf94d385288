"""Settings, all from environment variables (documented in docs/configuration.md).

With no environment at all the site runs embedded: SQLite, a Celery broker on the
file system and a mailbox of .eml files readable in the browser. Production sets
DATABASE_URL, CELERY_BROKER_URL, CACHE_URL, SECRET_KEY, SITE_URL and the email
settings.
"""

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/K8s secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return env(name, default)


DEBUG = env_bool("DEBUG", False)
VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))

SITE_URL = env("SITE_URL", "http://localhost:8000").rstrip("/")
_site = urlsplit(SITE_URL)
HTTPS = _site.scheme == "https"

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if HTTPS:
        raise ImproperlyConfigured("SECRET_KEY must be set when the site is served over HTTPS.")
    # Local development only: a served-over-HTTPS site refuses to start without one.
    SECRET_KEY = "insecure-local-development-key"  # noqa: S105
# Old keys, still accepted for signatures made before a rotation (sessions, reset
# links): comma- or whitespace-separated. Drop them once those have expired.
SECRET_KEY_FALLBACKS = env_secret("SECRET_KEY_FALLBACKS").replace(",", " ").split()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", f"{_site.hostname},localhost,127.0.0.1,testserver")
CSRF_TRUSTED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]

INSTALLED_APPS = [
    # django.contrib.admin, its site behind a second factor (linking.staff.site)
    "linking.staff.apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp_webauthn",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.usersessions",
    "csp",
    "accounts",
    "accounts.mfa",
    "accounts.providers.line",
    "accounts.providers.google",
    "linking",
    "linking.campaigns",
    "linking.matching",
    "linking.line",
    "anymail",
    "allauth.idp.oidc",
    "linking.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # After any sign-in, a customer with a second factor passes it before any page.
    "accounts.mfa.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.sessions.SessionTimeoutMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, else an SQLite file under var/.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web process read while the worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# Django's own queries are bound client-side and never prepared; the API's resolve
# query is prepared once per connection (linking/api/selectors.py), and nothing else.
# Turn off behind a pooler that cannot keep prepared statements (PgBouncer in
# transaction mode before 1.21).
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_PREPARED_STATEMENTS:
    # psycopg prepares only when asked (prepare=True); Django's default (None) never.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: allauth's rate limits live here, so production points it at Redis to share
# the counters between web processes.
CACHE_URL = env("CACHE_URL")
# How long a call to Redis (the cache, the rate limits) may wait: a Redis that stopped
# answering makes a request fail (503) instead of hanging.
REDIS_TIMEOUT_SECONDS = float(env("REDIS_TIMEOUT_SECONDS", "2"))
REDIS_OPTIONS = {
    "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
    "socket_timeout": REDIS_TIMEOUT_SECONDS,
}
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": REDIS_OPTIONS,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Rate limits (accounts.limits): named rules in the notation of the `limits` library,
# counted where every web process and worker sees the same counts: Redis (CACHE_URL's
# by default), else the site's own database. RATE_LIMITS (JSON) overrides rules by name.
RATE_LIMIT_STORAGE_URL = env(
    "RATE_LIMIT_STORAGE_URL",
    CACHE_URL if CACHE_URL.startswith(("redis://", "rediss://")) else "database://",
)
RATE_LIMITS = {
    # Password sign-in (customers, re-authentication, /admin/login/), before hashing;
    # the amounts of allauth's login_failed below.
    "signin.email": "5/5 minutes",
    "signin.ip": "10/minute",
    # Second-factor codes (TOTP, backup codes) per person, customers and staff alike.
    "mfa.user": "10/15 minutes",
    # Legacy passwords, per legacy account, per customer and per client address.
    "legacy_password.account": "5/15 minutes",
    "legacy_password.customer": "10/15 minutes",
    "legacy_password.ip": "30/15 minutes",
    # Ownership codes sent, per legacy account and per customer.
    "code_send.account": "3/15 minutes",
    "code_send.customer": "5/15 minutes",
    # Member-number lookups for where a code can go (enumeration), per customer and IP.
    "lookup.customer": "10/15 minutes",
    "lookup.ip": "30/15 minutes",
    # Failed client authentications at the OpenID provider's token endpoints.
    "oidc_client.client": "20/15 minutes",
    "oidc_client.ip": "40/15 minutes",
}


def rate_limit_overrides(raw: str) -> dict[str, str]:
    """RATE_LIMITS from the environment: {"rule name": "amount/period"}, checked."""
    from limits import parse_many

    try:
        overrides = dict(json.loads(raw or "{}"))
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"RATE_LIMITS is not a JSON object: {exc}") from exc
    for name, text in overrides.items():
        if name not in RATE_LIMITS:
            raise ImproperlyConfigured(f"RATE_LIMITS names no rule {name!r}")
        try:
            if len(parse_many(text)) != 1:
                raise ValueError("one rule each")
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(f"RATE_LIMITS[{name!r}] = {text!r}: {exc}") from exc
    return overrides


RATE_LIMITS.update(rate_limit_overrides(env("RATE_LIMITS")))

AUTH_USER_MODEL = "accounts.Customer"
# One backend (allauth's, subclassed): every password sign-in is throttled and costs
# one hash. A second backend would check a wrong password a second time.
AUTHENTICATION_BACKENDS = ["accounts.backends.SignInBackend"]
# Argon2id first; the others verify older hashes, which upgrade on the next sign-in.
PASSWORD_HASHERS = [
    "accounts.hashers.Argon2idPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# Formats of imported legacy passwords (linking.proofs.password): verified, never made.
LEGACY_PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "me"

# Internationalization: Japanese first, English second.
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "config" / "locale"]
TIME_ZONE = env("TIME_ZONE", "Asia/Tokyo")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Staff uploads (legacy-account imports) and their reports. Private: never served
# as static files; web and worker processes must share this folder.
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
# Email: SMTP when EMAIL_HOST is set, else .eml files under var/mailbox/, shown at
# /mailbox/ while MAILBOX_VIEW is on (default: DEBUG). EMAIL_BACKEND picks any other
# backend, e.g. an email service's through django-anymail, whose settings come from
# ANYMAIL_SETTINGS (JSON) and whose bounce webhooks need ANYMAIL_WEBHOOK_SECRET.
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "統合ID <no-reply@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
EMAIL_HOST = env("EMAIL_HOST")
_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
_MAILBOX_BACKEND = "config.mailbox.MailboxBackend"
EMAIL_BACKEND = env("EMAIL_BACKEND", _SMTP_BACKEND if EMAIL_HOST else _MAILBOX_BACKEND)
if EMAIL_HOST:
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", EMAIL_PORT == 587)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
try:
    ANYMAIL = dict(json.loads(env_secret("ANYMAIL_SETTINGS") or "{}"))
except (ValueError, TypeError) as exc:
    raise ImproperlyConfigured(f"ANYMAIL_SETTINGS is not a JSON object: {exc}") from exc
# user:password pairs, comma-separated: the new one and the old one while rotating.
ANYMAIL["WEBHOOK_SECRET"] = [
    pair.strip() for pair in env_secret("ANYMAIL_WEBHOOK_SECRET").split(",") if pair.strip()
]
MAILBOX_DIR = Path(env("MAILBOX_DIR", str(VAR_DIR / "mailbox")))
MAILBOX_VIEW = env_bool("MAILBOX_VIEW", DEBUG)
# SMS for ownership codes: a class with send(phone, text). The default writes to the mailbox.
SMS_BACKEND = env("SMS_BACKEND", "linking.sms.MailboxSmsBackend")

# Celery: a broker on the file system by default (a real worker, no server);
# RabbitMQ (amqp://) in production (docs/operations.md).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("amqp", "pyamqp")):
    # The broker confirms each published task, so a task queued is a task kept.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
    }
# A worker outlives a broker restart: it waits for the broker at start and after a
# lost connection for as long as it takes; heartbeats notice a dead connection
# within a minute. A task running when the connection drops finishes (stopping it
# mid-batch would leave its emails unconfirmed); the broker hands it out again, and
# the copy finds its deliveries taken and sends nothing.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_HEARTBEAT = 30
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Campaign emails (linking.campaigns; docs/operations.md). Beat's tick starts
# scheduled campaigns and reminder steps and restarts senders that died.
CAMPAIGN_TICK_SECONDS = env_int("CAMPAIGN_TICK_SECONDS", 30)
CAMPAIGN_LEASE_SECONDS = env_int("CAMPAIGN_LEASE_SECONDS", 120)
CAMPAIGN_CHUNK_SIZE = env_int("CAMPAIGN_CHUNK_SIZE", 100)
CAMPAIGN_SENDERS = env_int("CAMPAIGN_SENDERS", 4)
# Emails handed to the mail server per commit: at most this many per sender end up
# unconfirmed (never resent) when a sender dies or the database goes away mid-batch.
CAMPAIGN_BATCH_SIZE = env_int("CAMPAIGN_BATCH_SIZE", 20)
# Connections per sender, a batch spread over them: their waits on the server overlap.
CAMPAIGN_CONNECTIONS = env_int("CAMPAIGN_CONNECTIONS", 4)
CAMPAIGN_UNSUBSCRIBE_MAILTO = env("CAMPAIGN_UNSUBSCRIBE_MAILTO")
# No campaign email or LINE message in these local hours (TIME_ZONE), "21:00-08:00";
# empty: none. Senders wait for the end (linking/campaigns/quiet_hours.py).
CAMPAIGN_QUIET_HOURS = env("CAMPAIGN_QUIET_HOURS")
if CAMPAIGN_QUIET_HOURS and not re.fullmatch(
    r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", CAMPAIGN_QUIET_HOURS
):
    raise ImproperlyConfigured('CAMPAIGN_QUIET_HOURS must look like "21:00-08:00" or be empty.')
CELERY_BEAT_SCHEDULE = {
    "campaigns-tick": {"task": "campaigns.tick", "schedule": float(CAMPAIGN_TICK_SECONDS)},
    # The dashboard's daily figures (linking.staff.stats).
    "link-stats-refresh": {
        "task": "linking.refresh_link_stats",
        "schedule": float(env_int("LINK_STATS_REFRESH_SECONDS", 15 * 60)),
    },
}
# Admin imports (linking.import_jobs): a running import whose worker's heartbeat is
# older than this is run again (3 tries, then failed); beat looks every lease/4, at
# most a minute apart, and every worker looks when it starts.
IMPORT_LEASE_SECONDS = env_int("IMPORT_LEASE_SECONDS", 300)
CELERY_BEAT_SCHEDULE["imports-recover"] = {
    "task": "imports.recover",
    "schedule": float(min(60, max(1, IMPORT_LEASE_SECONDS // 4))),
}

# Sessions and cookies. Over HTTPS (SITE_URL https://...) every cookie is Secure,
# HTTP redirects to HTTPS and HSTS is sent.
# Absolute timeout: a sign-in lasts at most SESSION_COOKIE_AGE, however active;
# idle timeout: it ends after SESSION_IDLE_TIMEOUT without a request. Both are
# enforced by accounts.sessions.SessionTimeoutMiddleware (docs/security.md).
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 14)
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_TIMEOUT", 60 * 60 * 24)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
X_FRAME_OPTIONS = "DENY"
# How many proxies in front of the site append to X-Forwarded-For: the client's IP
# for rate limits and the audit trail is read that many entries from the right.
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# django-allauth: email sign-in with mandatory verification, social sign-in that
# never merges accounts by email.
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[統合ID] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = _site.scheme
ACCOUNT_REAUTHENTICATION_TIMEOUT = env_int("REAUTHENTICATION_TIMEOUT", 300)
# A customer with a password types it again; one without signs in again at their own
# IdP (accounts.reauth), and only when that IdP cannot prove a new sign-in, enters a
# code mailed to a confirmed address. A mailbox never stands in for the password
# (AccountAdapter.get_reauthentication_methods, accounts.views).
ACCOUNT_REAUTHENTICATION_METHODS = ("password", "code")
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reauthenticate": "10/m/user",
}
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupConsentForm"
# An unconfirmed address belongs to nobody (accounts.addresses): it blocks no sign-up
# and gets no password reset. A customer has one address; a new one replaces it only
# once confirmed. Sign-ups never confirmed are deleted after
# UNCONFIRMED_SIGNUP_EXPIRY_DAYS (0: never) by an hourly beat task.
ACCOUNT_FORMS = {
    "signup": "accounts.allauth_forms.SignupForm",
    "reset_password": "accounts.allauth_forms.ResetPasswordForm",
}
ACCOUNT_CHANGE_EMAIL = True
UNCONFIRMED_SIGNUP_EXPIRY_DAYS = env_int("UNCONFIRMED_SIGNUP_EXPIRY_DAYS", 7)
# Counts of ended rate-limit windows kept in the database (accounts.limits.database).
CELERY_BEAT_SCHEDULE["accounts-delete-ended-rate-limits"] = {
    "task": "accounts.delete_ended_rate_limits",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["accounts-expire-unconfirmed"] = {
    "task": "accounts.expire_unconfirmed_signups",
    "schedule": 3600.0,
}
# Mail the customer when a password, an email address or a sign-in method changes.
ACCOUNT_EMAIL_NOTIFICATIONS = True
# Last seen is refreshed by accounts.sessions (at most once a minute), not by
# allauth's middleware on every request.
USERSESSIONS_TRACK_ACTIVITY = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = False
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_REQUIRED = False
# The IdP subject identifies the customer; an email from an IdP is stored only when
# the IdP vouches for it (see accounts.adapters), so no extra verification round.
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_QUERY_EMAIL = True
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REAUTHENTICATION_REQUIRED = True
SOCIALACCOUNT_LOGIN_ON_GET = False

# Identity providers. A provider appears (button, URLs) only when configured.
LINE_CHANNEL_ID = env("LINE_CHANNEL_ID")
LINE_CHANNEL_SECRET = env_secret("LINE_CHANNEL_SECRET")
LINE_LOGIN_URL = env("LINE_LOGIN_URL", "https://access.line.me").rstrip("/")
LINE_API_URL = env("LINE_API_URL", "https://api.line.me").rstrip("/")
# The LINE Official Account (Messaging API channel, linking.line; docs/line.md): its
# own channel secret signs the webhooks, its access token authorizes pushes and
# link tokens. LINE_BOT_PROMPT ("normal" or "aggressive") makes LINE Login offer to
# add the Official Account as a friend.
LINE_MESSAGING_CHANNEL_SECRET = env_secret("LINE_MESSAGING_CHANNEL_SECRET")
LINE_MESSAGING_ACCESS_TOKEN = env_secret("LINE_MESSAGING_ACCESS_TOKEN")
LINE_BOT_PROMPT = env("LINE_BOT_PROMPT")
if LINE_BOT_PROMPT not in ("", "normal", "aggressive"):
    raise ImproperlyConfigured('LINE_BOT_PROMPT must be "normal", "aggressive" or empty.')
LINE_API_TIMEOUT_SECONDS = env_int("LINE_API_TIMEOUT_SECONDS", 10)
CELERY_BEAT_SCHEDULE["line-prune"] = {"task": "line.prune", "schedule": 3600.0}
GOOGLE_CLIENT_ID = env("GOOGLE_CLIENT_ID")
GOOGLE_CLIENT_SECRET = env_secret("GOOGLE_CLIENT_SECRET")
GOOGLE_ACCOUNTS_URL = env("GOOGLE_ACCOUNTS_URL", "https://accounts.google.com").rstrip("/")
GOOGLE_OAUTH2_URL = env("GOOGLE_OAUTH2_URL", "https://oauth2.googleapis.com").rstrip("/")
GOOGLE_APIS_URL = env("GOOGLE_APIS_URL", "https://www.googleapis.com").rstrip("/")


def _oidc_apps(raw: str) -> list[dict]:
    """OIDC_PROVIDERS: a JSON list of {id, name, server_url, client_id, secret,
    trust_email_verified?}."""
    if not raw.strip():
        return []
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"OIDC_PROVIDERS is not valid JSON: {exc}") from exc
    apps = []
    for entry in entries:
        missing = {"id", "name", "server_url", "client_id", "secret"} - entry.keys()
        if missing:
            raise ImproperlyConfigured(f"OIDC_PROVIDERS entry lacks {sorted(missing)}")
        apps.append(
            {
                "provider_id": entry["id"],
                "name": entry["name"],
                "client_id": entry["client_id"],
                "secret": entry["secret"],
                "settings": {
                    "server_url": entry["server_url"],
                    "oauth_pkce_enabled": True,
                    "fetch_userinfo": True,
                    "trust_email_verified": bool(entry.get("trust_email_verified", False)),
                },
            }
        )
    return apps


def social_providers(
    *,
    line_channel_id: str,
    line_channel_secret: str,
    google_client_id: str,
    google_client_secret: str,
    oidc_providers: str,
) -> dict:
    """SOCIALACCOUNT_PROVIDERS: a provider gets an app, and so a button and URLs, only
    when configured. Tests build theirs with this function too."""
    providers: dict = {
        # allauth's generic provider with a nonce and checked re-authentication.
        "openid_connect": {
            "provider_class": "accounts.providers.oidc.OpenIDConnectProvider",
            "APPS": _oidc_apps(oidc_providers),
        },
        "line": {"SCOPE": ["openid", "profile", "email"], "APPS": []},
        "google": {"SCOPE": ["openid", "profile", "email"], "APPS": []},
    }
    if line_channel_id:
        providers["line"]["APPS"] = [{"client_id": line_channel_id, "secret": line_channel_secret}]
    if google_client_id:
        providers["google"]["APPS"] = [
            {
                "client_id": google_client_id,
                "secret": google_client_secret,
                "settings": {"trust_email_verified": True},
            }
        ]
    return providers


SOCIALACCOUNT_PROVIDERS = social_providers(
    line_channel_id=LINE_CHANNEL_ID,
    line_channel_secret=LINE_CHANNEL_SECRET,
    google_client_id=GOOGLE_CLIENT_ID,
    google_client_secret=GOOGLE_CLIENT_SECRET,
    oidc_providers=env("OIDC_PROVIDERS"),
)

# Group services (linking.api; docs/configuration.md): the JSON API, webhooks, and
# the OpenID Connect provider (allauth.idp.oidc) with its one client registry.
API_AUTH_CACHE_SECONDS = env_int("API_AUTH_CACHE_SECONDS", 60)
API_EVENTS_SETTLE_SECONDS = env_int("API_EVENTS_SETTLE_SECONDS", 2)
API_AUDIT_FLUSH_SECONDS = float(env("API_AUDIT_FLUSH_SECONDS", "1"))
API_CALL_RETENTION_DAYS = env_int("API_CALL_RETENTION_DAYS", 400)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 10)
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", 30)
WEBHOOK_RETRY_MAX_SECONDS = env_int("WEBHOOK_RETRY_MAX_SECONDS", 3600)
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 90)
WEBHOOK_SECRET_OVERLAP_HOURS = env_int("WEBHOOK_SECRET_OVERLAP_HOURS", 72)
# Outbound requests (accounts.outbound) go to public addresses only, except these
# internal receivers: host[:port] or a network in CIDR notation.
OUTBOUND_ALLOWED_HOSTS = env_list("OUTBOUND_ALLOWED_HOSTS")
OUTBOUND_CA_BUNDLE = env("OUTBOUND_CA_BUNDLE")
# Probabilistic 名寄せ (linking.matching): Splink on DuckDB in-process, or on Spark
# (pyspark, the `spark` extra; a master URL such as spark://host:7077 for a cluster).
MATCHING_BACKEND = env("MATCHING_BACKEND", "duckdb")
MATCHING_SPARK_MASTER = env("MATCHING_SPARK_MASTER", "local[2]")
MATCHING_SPARK_DRIVER_MEMORY = env("MATCHING_SPARK_DRIVER_MEMORY", "4g")
MATCHING_SPARK_PARTITIONS = env_int("MATCHING_SPARK_PARTITIONS", 8)
# Where Spark checkpoints each clustering step: a new temporary folder in local mode;
# on a cluster, storage every executor reaches (hdfs://..., s3a://...).
MATCHING_SPARK_CHECKPOINT_DIR = env("MATCHING_SPARK_CHECKPOINT_DIR")

CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {"task": "webhooks.sweep", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["api-calls-prune"] = {"task": "api.prune_calls", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["webhooks-prune"] = {"task": "webhooks.prune", "schedule": 3600.0}


def _oidc_private_key() -> str:
    pem = env_secret("OIDC_PRIVATE_KEY").replace("\\n", "\n")
    if pem:
        return pem
    if HTTPS:
        raise ImproperlyConfigured(
            "OIDC_PRIVATE_KEY (or OIDC_PRIVATE_KEY_FILE) must be set when the site is "
            "served over HTTPS: it signs the ID tokens of sign-in with the unified ID."
        )
    from accounts.oidc_keys import development_key

    return development_key(VAR_DIR / "oidc-private-key.pem")


IDP_OIDC_ADAPTER = "accounts.oidc_provider.OIDCAdapter"


# The first key signs; OIDC_PREVIOUS_PRIVATE_KEY, during a rotation, is only published
# (docs/operations.md).
def _oidc_private_keys() -> list[dict]:
    from accounts.oidc_keys import published_keys

    previous = env_secret("OIDC_PREVIOUS_PRIVATE_KEY").replace("\\n", "\n")
    return published_keys(_oidc_private_key(), previous)


IDP_OIDC_PRIVATE_KEYS = _oidc_private_keys()
IDP_OIDC_INTROSPECTION_ENABLED = True
# Ending a session from the session list tells the services it signed into.
USERSESSIONS_ADAPTER = "accounts.oidc_logout.UserSessionsAdapter"
CELERY_BEAT_SCHEDULE["oidc-prune-grants"] = {
    "task": "accounts.prune_provider_grants",
    "schedule": 3600.0,
}
IDP_OIDC_ACCESS_TOKEN_EXPIRES_IN = env_int("OIDC_ACCESS_TOKEN_SECONDS", 3600)
IDP_OIDC_REFRESH_TOKEN_EXPIRES_IN = env_int("OIDC_REFRESH_TOKEN_SECONDS", 60 * 60 * 24 * 30)

# Content Security Policy (django-csp): no inline script or style anywhere, admin
# included. form-action stays open: sign-in forms redirect to IdPs and to legacy
# services' OIDC servers, which staff configure at run time.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
}

# django-otp
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", "統合ID")
# Passkeys (django-otp-webauthn) are a second factor here, never a sign-in of their
# own: sign-in goes through allauth, so its rules and audit apply on every path.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_RP_ID = _site.hostname
OTP_WEBAUTHN_RP_NAME = env("OTP_WEBAUTHN_RP_NAME", "統合ID")
OTP_WEBAUTHN_ALLOWED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]
# WebAuthn needs a secure origin with a domain name as its RP ID: https://, or
# http://localhost in development. Under any other SITE_URL (http://127.0.0.1:8000)
# passkeys are off, the MFA page says why, and the package's origin check is moot.
_host = _site.hostname or ""
PASSKEYS_ENABLED = _host == "localhost" or (
    HTTPS and bool(_host) and not _host.replace(".", "").isdigit() and ":" not in _host
)
if not PASSKEYS_ENABLED:
    SILENCED_SYSTEM_CHECKS = ["otp_webauthn.E031"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"not_api_answers": {"()": "linking.api.log_filters.NotApiAnswers"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.request": {"filters": ["not_api_answers"]},
    },
}
