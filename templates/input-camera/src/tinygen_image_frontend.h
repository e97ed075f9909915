/* Image front-end: a camera frame -> the model's int8 input. Portable C99, integer only,
 * no allocation. Python twin: tinygen/frontend/image.py (tested equal, byte for byte).
 *
 *   1. centre crop of the frame to the model's aspect ratio;
 *   2. each source pixel to the model's channels: gray8 as is; RGB565 (big-endian, as the
 *      ESP32 camera driver delivers it) and RGB888 (R, G, B bytes) expanded to 8 bits;
 *      gray from colour = (77 R + 150 G + 29 B + 128) >> 8;
 *   3. bilinear resize with 8-bit weights, rounded: (sum + 32768) >> 16;
 *   4. quantization through a 256-entry table computed at render time from the model's
 *      input scale/zero point and the pixel range it was trained on.
 */
#ifndef TINYGEN_IMAGE_FRONTEND_H_
#define TINYGEN_IMAGE_FRONTEND_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TG_PIX_GRAY8 = 0, TG_PIX_RGB565 = 1, TG_PIX_RGB888 = 2 } tg_pixel_format;

typedef struct {
  uint16_t out_width;
  uint16_t out_height;
  uint8_t out_channels;  /* 1 = gray, 3 = RGB */
  const int8_t* lut;     /* [256]: 8-bit pixel value -> the model's int8 input */
} tg_image_config;

/* Writes out_height * out_width * out_channels int8 values (row-major, HWC). Returns 0 on
 * success, -1 if the frame is empty or smaller than 1 pixel after cropping. */
int tg_image_to_input(const tg_image_config* config, const uint8_t* frame, uint16_t width,
                      uint16_t height, tg_pixel_format format, int8_t* out);

#ifdef __cplusplus
}
#endif

#endif /* TINYGEN_IMAGE_FRONTEND_H_ */
