"""The rendered-page cache, in four parts:

- ``read_through``: ``cached`` and ``invalidate``, the app's two calls (no request needed);
- ``serving``: a request's page, whole for visitors, a fragment in a fresh layout for users;
- ``backends``: where pages are kept (this process, Redis, or both) and the scopes;
- ``versions``: the per-scope version counters every process of a machine shares.

Kept free of imports so that importing one part does not import the others.
"""
