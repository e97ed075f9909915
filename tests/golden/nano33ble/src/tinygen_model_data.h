// The model flatbuffer (generated into tinygen_model_data.cc).
#ifndef TINYGEN_MODEL_DATA_H_
#define TINYGEN_MODEL_DATA_H_

extern const unsigned char g_tinygen_model[];
extern const unsigned int g_tinygen_model_len;

#endif  // TINYGEN_MODEL_DATA_H_
