/* Image front-end (see tinygen_image_frontend.h). */
#include "tinygen_image_frontend.h"

/* One source pixel as up to three 8-bit channels (gray, or R G B). */
static void pixel(const uint8_t* frame, uint32_t index, tg_pixel_format format,
                  uint8_t channels, uint32_t* out) {
  uint32_t r;
  uint32_t g;
  uint32_t b;
  if (format == TG_PIX_GRAY8) {
    out[0] = out[1] = out[2] = frame[index];
    return;
  }
  if (format == TG_PIX_RGB565) {
    const uint32_t v = ((uint32_t)frame[2 * index] << 8) | frame[2 * index + 1];
    r = (v >> 11) & 31u;
    g = (v >> 5) & 63u;
    b = v & 31u;
    r = (r << 3) | (r >> 2);
    g = (g << 2) | (g >> 4);
    b = (b << 3) | (b >> 2);
  } else {
    r = frame[3 * index];
    g = frame[3 * index + 1];
    b = frame[3 * index + 2];
  }
  if (channels == 1) {
    out[0] = (77u * r + 150u * g + 29u * b + 128u) >> 8;
  } else {
    out[0] = r;
    out[1] = g;
    out[2] = b;
  }
}

/* Source coordinate of output index i (of n) over a span of `size` source pixels, as an
 * integer part and an 8-bit fraction (pixel centres aligned, clamped to the edges). */
static void source_coord(uint32_t i, uint32_t n, uint32_t size, uint32_t* i0, uint32_t* i1,
                         uint32_t* frac) {
  int64_t pos = ((int64_t)(2 * i + 1) * size * 256) / (2 * (int64_t)n) - 128;
  if (pos < 0) pos = 0;
  if (pos > (int64_t)(size - 1) * 256) pos = (int64_t)(size - 1) * 256;
  *i0 = (uint32_t)(pos >> 8);
  *frac = (uint32_t)(pos & 255);
  *i1 = *i0 + 1 < size ? *i0 + 1 : *i0;
}

int tg_image_to_input(const tg_image_config* c, const uint8_t* frame, uint16_t width,
                      uint16_t height, tg_pixel_format format, int8_t* out) {
  if (frame == NULL || width == 0 || height == 0) return -1;
  /* centre crop to the output's aspect ratio */
  uint32_t crop_w = width;
  uint32_t crop_h = height;
  if ((uint32_t)width * c->out_height > (uint32_t)height * c->out_width) {
    crop_w = (uint32_t)height * c->out_width / c->out_height;
  } else {
    crop_h = (uint32_t)width * c->out_height / c->out_width;
  }
  if (crop_w == 0 || crop_h == 0) return -1;
  const uint32_t x_off = (width - crop_w) / 2;
  const uint32_t y_off = (height - crop_h) / 2;
  for (uint32_t y = 0; y < c->out_height; ++y) {
    uint32_t y0, y1, fy;
    source_coord(y, c->out_height, crop_h, &y0, &y1, &fy);
    for (uint32_t x = 0; x < c->out_width; ++x) {
      uint32_t x0, x1, fx;
      source_coord(x, c->out_width, crop_w, &x0, &x1, &fx);
      uint32_t p00[3], p01[3], p10[3], p11[3];
      pixel(frame, (y_off + y0) * width + x_off + x0, format, c->out_channels, p00);
      pixel(frame, (y_off + y0) * width + x_off + x1, format, c->out_channels, p01);
      pixel(frame, (y_off + y1) * width + x_off + x0, format, c->out_channels, p10);
      pixel(frame, (y_off + y1) * width + x_off + x1, format, c->out_channels, p11);
      for (uint32_t k = 0; k < c->out_channels; ++k) {
        const uint32_t top = p00[k] * (256u - fx) + p01[k] * fx;
        const uint32_t bottom = p10[k] * (256u - fx) + p11[k] * fx;
        const uint32_t value = (top * (256u - fy) + bottom * fy + 32768u) >> 16;
        out[(y * c->out_width + x) * c->out_channels + k] = c->lut[value];
      }
    }
  }
  return 0;
}
