"""Shipped benchmark profiles: partial configurations applied to every row of a benchmark."""
