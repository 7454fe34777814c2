"""The at-risk list, the product marketing acts on: scores, tiers, reasons, segments and
actions per customer, the list's columns and files, the summary page, and publishing."""
