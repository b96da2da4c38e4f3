"""django-q2 entry points of the ingestion app, one module per topic.

Tasks take ids, call one service and are safe to run twice.
"""
