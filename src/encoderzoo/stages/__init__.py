"""The stages of the chain, one module each, every one reading a RunContext and none calling
another (the pipeline orders them):

    prepare -> infer -> score -> (triage) -> bench -> report

plus the device runners' interop and the Triton export. The artifacts a stage needs (the graph,
the fused graph, the int8 kinds) are built on first use through the run's store (see
encoderzoo.store). Each stage module declares OPTIONS (the RunConfig fields it reads: the CLI
offers those), `run(ctx)` and `plan(ctx)` (its lines of `run --dry-run`)."""
