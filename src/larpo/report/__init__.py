"""`larpo-report`: `collect` (runs of a sweep or a runs.csv), `stats` (paired t, Holm, verdicts),
`tables`, `figures`, `cli` (the command line); `schema` holds the `report` keys of experiment files."""
