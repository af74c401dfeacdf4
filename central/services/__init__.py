"""The central server's services: what the dashboard (and the command line) asks of the
data, with no HTTP in it (../shared/ARCHITECTURE.md, "The central server in layers").

HTTP (``central.api``, ``central.dashboard``) over these services over data access
(``central.db``). A service takes the store, the period and "now" as arguments and
returns plain values; the dashboard's routers parse requests, call services and render.

- ``reviews``: end of day, the review queue and its decisions, the audit log
- ``exports``: the circulation exports (CSV of events, Koha .koc)
- ``reports``: form I, the reading stars and best classes, the school's targets
- ``registers``: overdue slips, repairs, withdrawals, the work record, stock-take
- ``school``: the loan rules, calendar, timetable, cards, kiosks and librarians
- ``data_in``: staged roster and catalogue imports, previewed then confirmed
- ``sessions``: librarians signing in and out, their sessions and form tokens
- ``tables``, ``charts``: a report's table as CSV/XLSX, its bar chart as SVG
"""
