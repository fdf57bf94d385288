"""Django logs every 4xx answer as a warning (logger django.request). The API's 4xx
answers are part of its protocol (404: not linked, 401: no valid token, 429: over
the rate limit) and each is already an ApiCall audit row, so they are not logged
again; its 5xx answers are."""

import logging

API_PREFIX = "/api/"


class NotApiAnswers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is None or getattr(record, "status_code", 500) >= 500:
            return True
        return not request.path.startswith(API_PREFIX)
