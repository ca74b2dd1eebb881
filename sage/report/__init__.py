"""`sage report`: a static HTML site (index + one page per feature) from explanation results.

Pure pieces (`heatmap`, `histogram`, `gather`) turn records into view models; `inputs` reads the
files and the activation store; `site` renders the Jinja2 templates and writes the folder.
"""
