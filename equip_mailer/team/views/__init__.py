"""The team pages, one module per kind of page; each lists its routes in ``ROUTES``."""
