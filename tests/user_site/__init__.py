"""A user's site, made with ``startproject``, and its ordinary test suite (see :mod:`tests.user_site.build`)."""
