"""Link secrets for tests: strong enough for the 32-byte rule (``secrets.token_urlsafe(32)``),
fixed so that a failing test can be re-run, and never used anywhere real."""

LINK_SECRET = "Gjn0LU1-bCl2gKPvPD9Q4UHaGBoQqApKttAnrwFpNoY"
OTHER_LINK_SECRET = "1N07_hPWYE7JG2M6f2jmz382TwOGs5JEQwPK1fwSPMY"
