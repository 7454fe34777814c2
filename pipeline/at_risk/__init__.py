"""The at-risk list, the product marketing acts on: scores, tiers, reasons, segments and
actions per customer, the list's columns and files, the summary page, publishing (and the
`latest` link), and the CRM import files (`crm/`)."""
