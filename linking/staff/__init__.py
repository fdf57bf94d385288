"""Staff side: the admin behind a second factor, the link-rate dashboard, search,
the customer page with assisted linking, and the matching report (名寄せ)."""
