/* Test harness: the image front-end on one frame. stdin: uint16 out_width, out_height,
 * width, height; uint8 out_channels, format; int8 lut[256]; the frame bytes.
 * stdout: the model input (out_height * out_width * out_channels int8). */
#include <stdio.h>
#include <stdlib.h>

#include "tinygen_image_frontend.h"

int main(void) {
  uint16_t dims[4];
  uint8_t kind[2];
  int8_t lut[256];
  if (fread(dims, sizeof dims, 1, stdin) != 1 || fread(kind, 2, 1, stdin) != 1 ||
      fread(lut, 256, 1, stdin) != 1) {
    return 3;
  }
  const size_t bpp = kind[1] == TG_PIX_GRAY8 ? 1 : kind[1] == TG_PIX_RGB565 ? 2 : 3;
  const size_t frame_bytes = (size_t)dims[2] * dims[3] * bpp;
  uint8_t* frame = malloc(frame_bytes);
  if (fread(frame, 1, frame_bytes, stdin) != frame_bytes) return 3;
  const tg_image_config config = {dims[0], dims[1], kind[0], lut};
  const size_t n = (size_t)dims[0] * dims[1] * kind[0];
  int8_t* out = malloc(n);
  if (tg_image_to_input(&config, frame, dims[2], dims[3], (tg_pixel_format)kind[1], out) != 0) {
    return 4;
  }
  fwrite(out, 1, n, stdout);
  return 0;
}
