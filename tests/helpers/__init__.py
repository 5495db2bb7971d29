"""Shared test code, in one place: micro configs (`configs`), the environment of subprocess runs
(`env`), tiny hub-style models (`tiny_hub`), allRank's losses as a peer (`allrank`) and fakes of
the run's collaborators (`fakes`)."""
