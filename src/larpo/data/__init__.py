"""Data sources, one module per option: `contract` (the `Source` a run gets, the `DataSource`
and `WorldTask` protocols), `records` (strict reading, held-out splits), `answers` (final-number
matching), `gsm8k`, `ultrafeedback`, `lists`; `schema` holds the group's typed keys. The
embedded worlds' sources live in `larpo.worlds`."""
