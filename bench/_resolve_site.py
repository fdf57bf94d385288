"""Settings for bench.resolve only: the site's settings with bench/_resolve_urls.py
as URLconf. Never used by the site itself."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench._resolve_urls"
