"""The stages of the chain, one module each, every one reading a RunContext:

    prepare -> export -> optimize -> (quantize, on demand) -> infer -> score -> (triage)
    -> bench -> report

plus the device runners' interop and the Triton export. Each stage module has `run(ctx)` and
`plan(ctx)` (its lines of `run --dry-run`)."""
