"""Issue 18 operator zoo, group RESIZE: upsampling (RESIZE_NEAREST_NEIGHBOR,
RESIZE_BILINEAR) and transposed convolution (TRANSPOSE_CONV)."""

from __future__ import annotations

from . import Case


def _up(size, interpolation):
    def build(xs):
        import keras

        x = keras.layers.Conv2D(3, 3, padding="same")(xs[0])
        if interpolation == "nearest":
            # Keras 3 writes UpSampling2D(nearest) as a repeat (EXPAND_DIMS, TILE,
            # 5-D RESHAPE), not as RESIZE_NEAREST_NEIGHBOR; the same upsampling
            # through keras.ops.image.resize becomes the TFLite op.
            h, w = x.shape[1] * size[0], x.shape[2] * size[1]
            return keras.layers.Lambda(lambda t: keras.ops.image.resize(t, (h, w), interpolation="nearest"))(x)
        return keras.layers.UpSampling2D(size, interpolation=interpolation)(x)
    return build


def _tf_resize(h, w, method, align_corners, half_pixel_centers=False):
    """TF1-style resizes: the align_corners / half_pixel_centers variants."""
    def build(xs):
        import keras
        import tensorflow as tf

        def fn(t):
            if method == "nearest":
                return tf.compat.v1.image.resize_nearest_neighbor(t, (h, w), align_corners=align_corners,
                                                                  half_pixel_centers=half_pixel_centers)
            return tf.compat.v1.image.resize_bilinear(t, (h, w), align_corners=align_corners,
                                                      half_pixel_centers=half_pixel_centers)
        x = keras.layers.Conv2D(2, 3, padding="same")(xs[0])
        return keras.layers.Lambda(fn)(x)
    return build


def _resizing(h, w, interpolation, **kw):
    def build(xs):
        import keras

        return keras.layers.Resizing(h, w, interpolation=interpolation, **kw)(xs[0])
    return build


def _tconv(filters, k, strides, padding, activation=None, use_bias=True):
    def build(xs):
        import keras

        # a bias drawn at random: the converter drops an all-zero one (Keras' default)
        return keras.layers.Conv2DTranspose(filters, k, strides=strides, padding=padding, activation=activation,
                                            use_bias=use_bias, bias_initializer="random_normal")(xs[0])
    return build


def _autoencoder(xs):
    import keras

    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(xs[0])
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu",
                                     bias_initializer="random_normal")(x)
    return keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", bias_initializer="random_normal")(x)


def _unet(xs):
    import keras

    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(xs[0])
    b = keras.layers.MaxPooling2D(2)(a)
    b = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(b)
    u = keras.layers.Lambda(lambda t: keras.ops.image.resize(t, (16, 16), interpolation="nearest"))(b)
    c = keras.layers.Concatenate()([u, a])
    return keras.layers.Conv2D(4, 3, padding="same")(c)


def _unet_bilinear(xs):
    import keras

    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(xs[0])
    b = keras.layers.AveragePooling2D(2)(a)
    b = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(b)
    u = keras.layers.UpSampling2D(2, interpolation="bilinear")(b)
    c = keras.layers.Concatenate()([u, a])
    return keras.layers.Conv2D(2, 1)(c)


MODELS = {
    "rs_up_nearest_2x": Case(_up((2, 2), "nearest"), ((8, 8, 1),), "RESIZE_NEAREST_NEIGHBOR", data="image"),
    "rs_up_nearest_2x3": Case(_up((2, 3), "nearest"), ((6, 5, 2),), "RESIZE_NEAREST_NEIGHBOR", data="image"),
    "rs_up_bilinear_2x": Case(_up((2, 2), "bilinear"), ((8, 8, 1),), "RESIZE_BILINEAR", data="image"),
    "rs_up_bilinear_3x2": Case(_up((3, 2), "bilinear"), ((5, 7, 2),), "RESIZE_BILINEAR", data="image"),
    "rs_resizing_nearest": Case(_resizing(13, 11, "nearest"), ((8, 7, 3),), "RESIZE_NEAREST_NEIGHBOR",
                                data="image"),
    "rs_resizing_bilinear": Case(_resizing(13, 11, "bilinear"), ((8, 7, 3),), "RESIZE_BILINEAR", data="image"),
    # exactly 2x with half-pixel centres: weights 3/4 and 1/4, so sums land on halves (TFLite Micro's rounding)
    "rs_resizing_bilinear_2x": Case(_resizing(16, 14, "bilinear"), ((8, 7, 3),), "RESIZE_BILINEAR"),
    "rs_resizing_down_bilinear": Case(_resizing(5, 6, "bilinear"), ((12, 10, 2),), "RESIZE_BILINEAR",
                                      data="image"),
    "rs_resizing_nearest_gray": Case(_resizing(4, 16, "nearest"), ((9, 7, 1),), "RESIZE_NEAREST_NEIGHBOR",
                                     data="image"),
    "rs_resizing_nearest_odd": Case(_resizing(11, 9, "nearest"), ((6, 5, 2),), "RESIZE_NEAREST_NEIGHBOR",
                                    data="image"),
    "rs_nearest_align_corners": Case(_tf_resize(11, 8, "nearest", True), ((5, 4, 1),), "RESIZE_NEAREST_NEIGHBOR",
                                     data="image"),
    "rs_nearest_plain": Case(_tf_resize(7, 13, "nearest", False), ((5, 4, 1),), "RESIZE_NEAREST_NEIGHBOR",
                             data="image"),
    "rs_bilinear_align_corners": Case(_tf_resize(11, 8, "bilinear", True), ((5, 4, 1),), "RESIZE_BILINEAR",
                                      data="image"),
    "rs_bilinear_plain": Case(_tf_resize(7, 13, "bilinear", False), ((5, 4, 1),), "RESIZE_BILINEAR",
                              data="image"),
    "rs_bilinear_down_half_pixel": Case(_tf_resize(3, 7, "bilinear", False, True), ((9, 10, 1),),
                                        "RESIZE_BILINEAR", data="image"),
    "rs_tconv_s2_same": Case(_tconv(4, 3, 2, "same"), ((8, 8, 3),), "TRANSPOSE_CONV", data="image"),
    "rs_tconv_s1_valid": Case(_tconv(3, 3, 1, "valid"), ((8, 8, 2),), "TRANSPOSE_CONV", data="image"),
    "rs_tconv_s2_relu": Case(_tconv(5, (3, 2), 2, "same", activation="relu"), ((6, 7, 4),), "TRANSPOSE_CONV",
                             data="image"),
    # even and odd kernels with SAME: TFLite Micro's padding from the output size (1 row cut above, 2 columns left)
    "rs_tconv_k4x5_s2x1": Case(_tconv(3, (4, 5), (2, 1), "same"), ((5, 4, 3),), "TRANSPOSE_CONV", data="image"),
    # more output channels than the kernel sums at once (32)
    "rs_tconv_wide": Case(_tconv(40, 3, 2, "same"), ((4, 3, 6),), "TRANSPOSE_CONV", data="image"),
    # no bias: the converter's 3-input form, its output shape computed by SHAPE, STRIDED_SLICE and PACK
    "rs_tconv_nobias": Case(_tconv(3, 3, 2, "same", use_bias=False), ((4, 5, 6),), "TRANSPOSE_CONV SHAPE PACK"),
    # normal data: an input zero point away from -128; 5 channels: the DSP path's words and a tail
    "rs_tconv_s2_valid": Case(_tconv(2, 4, 2, "valid"), ((5, 6, 5),), "TRANSPOSE_CONV"),
    "rs_autoencoder": Case(_autoencoder, ((16, 16, 1),), "CONV_2D TRANSPOSE_CONV", data="image"),
    "rs_unet": Case(_unet, ((16, 16, 3),), "CONV_2D MAX_POOL_2D RESIZE_NEAREST_NEIGHBOR CONCATENATION",
                    data="image"),
    "rs_unet_bilinear": Case(_unet_bilinear, ((12, 12, 1),), "RESIZE_BILINEAR CONCATENATION", data="image"),
}
