//! Malformed and unsupported StableHLO gives typed errors that say where and what, never a
//! panic; and the format of a file is recognised by its content.

use jjt_import::{Format, ImportError, detect, import_stablehlo};

/// A module around `body` (the ops of `main`, whose arguments are `args`).
fn module(args: &str, body: &str) -> String {
    format!(
        "module @m {{\n  func.func public @main({args}) -> (tensor<3xf32>) {{\n{body}\n  }}\n}}\n"
    )
}

fn err(text: &str) -> ImportError {
    import_stablehlo(text, "m").expect_err("the import should fail")
}

#[test]
fn an_unsupported_op_is_named_with_its_position_and_the_supported_set() {
    let t = module(
        "%arg0: tensor<3xf32>",
        "    %0 = stablehlo.sort %arg0 : tensor<3xf32>\n    return %0 : tensor<3xf32>",
    );
    match err(&t) {
        ImportError::Unsupported { pos, op, supported } => {
            assert_eq!((pos.line, pos.col), (3, 5));
            assert_eq!(op, "stablehlo.sort");
            assert!(
                supported.contains("dot_general") && supported.contains("convolution"),
                "{supported}"
            );
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn malformed_text_gives_its_line_and_column() {
    let good = module(
        "%arg0: tensor<3xf32>",
        "    %0 = stablehlo.tanh %arg0 : tensor<3xf32>\n    return %0 : tensor<3xf32>",
    );
    assert!(import_stablehlo(&good, "m").is_ok());
    // Every proper prefix of a valid module (without its final newline) is refused with an
    // error, never a panic.
    let good = good.trim_end();
    for cut in 0..good.len() {
        if !good.is_char_boundary(cut) {
            continue;
        }
        let r = import_stablehlo(&good[..cut], "m");
        assert!(r.is_err(), "prefix of {cut} bytes: {}", &good[..cut]);
    }
    match err("module @m {\n  func.func public @main(%arg0 tensor<3xf32>) {\n  }\n}") {
        ImportError::Mlir(e) => {
            assert_eq!((e.pos.line, e.pos.col), (2, 32), "{e}");
            assert!(e.msg.contains("expected `:`"), "{e}");
        }
        e => panic!("{e:?}"),
    }
    match err(
        "module @m { func.func public @main() { %0 = \"a.b\"() {x = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]} : () -> tensor<f32> } }",
    ) {
        ImportError::Mlir(e) => assert!(e.msg.contains("nesting deeper"), "{e}"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn each_kind_of_mistake_has_its_own_error() {
    // A symbolic dimension that is not the leading one.
    let t = module("%arg0: tensor<3x?xf32>", "    return %arg0 : tensor<3x?xf32>");
    assert!(matches!(err(&t), ImportError::Dynamic { .. }), "{:?}", err(&t));
    // Two arguments whose names sanitise to the same name.
    let t = module(
        "%arg0: tensor<3xf32> loc(\"p['w']\"), %arg1: tensor<3xf32> loc(\"p.w\")",
        "    %0 = stablehlo.add %arg0, %arg1 : tensor<3xf32>\n    return %0 : tensor<3xf32>",
    );
    match err(&t) {
        ImportError::NameClash { name, first, second } => {
            assert_eq!((name.as_str(), first.as_str(), second.as_str()), ("p.w", "p['w']", "p.w"));
        }
        e => panic!("{e:?}"),
    }
    // A value used before it is defined.
    let t = module(
        "%arg0: tensor<3xf32>",
        "    %0 = stablehlo.add %arg0, %7 : tensor<3xf32>\n    return %0 : tensor<3xf32>",
    );
    assert!(matches!(err(&t), ImportError::UnknownValue { ref name, .. } if name == "7"));
    // A type that is not what the op computes.
    let t = module(
        "%arg0: tensor<3xf32>",
        "    %0 = stablehlo.tanh %arg0 : tensor<4xf32>\n    return %0 : tensor<4xf32>",
    );
    assert!(matches!(err(&t), ImportError::TypeMismatch { .. }), "{:?}", err(&t));
    // An element type jjt has no dtype for.
    let t = module("%arg0: tensor<3xbf16>", "    return %arg0 : tensor<3xbf16>");
    assert!(matches!(err(&t), ImportError::ElementType { ref elem, .. } if elem == "bf16"));
    // Operands that do not fit the op (jjt's own type error).
    let t = module(
        "%arg0: tensor<3xf32>, %arg1: tensor<4xf32>",
        "    %0 = stablehlo.add %arg0, %arg1 : tensor<3xf32>\n    return %0 : tensor<3xf32>",
    );
    assert!(matches!(err(&t), ImportError::Build { .. }), "{:?}", err(&t));
    // A constant with the wrong number of values.
    let t = module(
        "",
        "    %0 = stablehlo.constant dense<[1.0, 2.0]> : tensor<3xf32>\n    return %0 : tensor<3xf32>",
    );
    assert!(matches!(err(&t), ImportError::Malformed { .. }), "{:?}", err(&t));
    // Recursion.
    let t = "module @m {\n  func.func public @main(%arg0: tensor<3xf32>) -> tensor<3xf32> {\n    %0 = call @f(%arg0) : (tensor<3xf32>) -> tensor<3xf32>\n    return %0 : tensor<3xf32>\n  }\n  func.func private @f(%arg0: tensor<3xf32>) -> tensor<3xf32> {\n    %0 = call @f(%arg0) : (tensor<3xf32>) -> tensor<3xf32>\n    return %0 : tensor<3xf32>\n  }\n}\n";
    assert!(
        matches!(err(t), ImportError::Recursion { ref name, .. } if name == "f"),
        "{:?}",
        err(t)
    );
    // No public function.
    let t = "module @m {\n  func.func private @f(%arg0: tensor<3xf32>) -> tensor<3xf32> {\n    return %arg0 : tensor<3xf32>\n  }\n}\n";
    assert!(matches!(err(t), ImportError::NoMain));
}

#[test]
fn names_come_from_arg_info_then_locations_then_positions() {
    let t = "#loc1 = loc(\"params['b']\")\nmodule @m {\n  func.func public @main(%arg0: tensor<3xf32> {jax.arg_info = \"params['a']\"} loc(\"ignored\"), %arg1: tensor<3xf32> loc(#loc1), %arg2: tensor<3xf32>) -> (tensor<3xf32>) {\n    %0 = stablehlo.add %arg0, %arg1 : tensor<3xf32>\n    %1 = stablehlo.add %0, %arg2 : tensor<3xf32>\n    return %1 : tensor<3xf32>\n  }\n}\n";
    let f = import_stablehlo(t, "m").unwrap();
    let names: Vec<&str> = f.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["params.a", "params.b", "arg2"]);
}

#[test]
fn formats_are_recognised_by_content() {
    assert_eq!(detect(b"func f(x: f32[3]) -> f32[3] {\n  return x\n}\n"), Format::Jjt);
    assert_eq!(detect(b"\n// exported\nmodule @jit_f attributes {} {\n}"), Format::StableHlo);
    assert_eq!(detect(b"#loc1 = loc(\"x\")\nmodule @m {}"), Format::StableHlo);
    assert_eq!(detect(b"\"builtin.module\"() ({\n}) : () -> ()"), Format::StableHlo);
    assert_eq!(detect(&[0x08, 0x09, 0x12, 0x07]), Format::Onnx);
}
