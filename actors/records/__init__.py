"""What a session leaves behind: its files and their names (``paths``), the writers that keep every file
valid whatever happens to the process or the disk (``files``), and the KPI document, status line and
premium series built from the session's counters (``kpi``)."""
