{
  "targets": [
    {
      "target_name": "mnist_native",
      "sources": ["binding.cc", "blas.cc", "conv_input_gradient.cc", "conv_input_scatter.cc", "conv_weight_gradient.cc", "routing.cc", "optimizer_update.cc"],
      "cflags_cc": ["-O3", "-march=native", "-std=c++17", "-fno-math-errno"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-ldl"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17"] }
    }
  ]
}
