"""Baseline for bench/intake.py: a separate minimal Django project whose one view only commits the raw body.

No middleware, one model, one INSERT in autocommit, the same database options as Harbour
(SQLite WAL, synchronous NORMAL, IMMEDIATE transactions, 20 s busy timeout). It is what
Harbour's endpoint costs compared to doing nothing but keeping the bytes with Django.
Run by bench/intake.py: DJANGO_SETTINGS_MODULE=baseline_django.settings, bench/ on sys.path.
"""
