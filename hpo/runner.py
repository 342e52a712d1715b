# The trial runner of trial batches; written by the hpo-runner work of issue 11.
