"""Audio features: frame maths, log-mel extraction, normalisation and caching."""
