#loc1 = loc("params['b0']")
#loc2 = loc("params['b1']")
#loc3 = loc("params['w0']")
#loc4 = loc("params['w1']")
#loc5 = loc("params['w2']")
#loc6 = loc("x")
module @jit_mlp attributes {jax.uses_shape_polymorphism = false, mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<16xf64> loc("params['b0']"), %arg1: tensor<16xf64> loc("params['b1']"), %arg2: tensor<5x16xf64> loc("params['w0']"), %arg3: tensor<16x16xf64> loc("params['w1']"), %arg4: tensor<16x3xf64> loc("params['w2']"), %arg5: tensor<5xf64> loc("x")) -> (tensor<3xf64> {jax.result_info = "result"}) {
    %cst = stablehlo.constant dense<5.000000e-01> : tensor<f64> loc(#loc23)
    %cst_0 = stablehlo.constant dense<1.000000e+00> : tensor<f64> loc(#loc23)
    %cst_1 = stablehlo.constant dense<0.79788456080286541> : tensor<f64> loc(#loc23)
    %cst_2 = stablehlo.constant dense<4.471500e-0