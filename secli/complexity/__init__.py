"""Parameters and FLOPs, baseline against injected: ``count`` (counting one spec or a sweep),
``flops`` (fvcore with secli's handles for the ops fvcore skips), ``input_size`` (the smallest
input a network takes), ``sweep`` (YAML experiments), ``results`` (rows and their JSON) and
``workflow`` (``complexity``, the whole of ``secli complexity``)."""
