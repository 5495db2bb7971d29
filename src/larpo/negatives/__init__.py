"""Negatives strategies (Figure 3a): `contract.Strategy`, the shipped `strategies`, and the
group's `schema`."""
