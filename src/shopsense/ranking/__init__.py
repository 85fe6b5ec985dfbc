"""Candidates, features, the learned ranker, business rules, diversity and explanations."""
