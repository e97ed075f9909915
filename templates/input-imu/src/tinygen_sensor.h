// Sensor mode: board glue reads the chip, the portable loop does the rest.
#ifndef TINYGEN_SENSOR_H_
#define TINYGEN_SENSOR_H_

namespace tinygen {

// Board glue (in the board's main.cpp): start the sensor; false if it does not answer.
bool sensor_begin();
// Board glue: one new sample, TINYGEN_SENSOR_CHANNELS floats in the input spec's channel
// order and units, if one is due (at TINYGEN_SENSOR_RATE_HZ); false otherwise. Non-blocking.
bool sensor_read(float* sample);

// Portable (tinygen_sensor_loop.cpp): call from the main loop. Reads every due sample,
// feeds the front-end, and infers each completed window (an inf frame per window).
void sensor_poll();

}  // namespace tinygen

#endif  // TINYGEN_SENSOR_H_
