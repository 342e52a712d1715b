"""Minimal MultiWorkerMirroredStrategy training for the tensorflow-distributed runtime."""
import tensorflow as tf

strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(32,))])
    model.compile(optimizer="sgd", loss="mse")
x = tf.random.normal((1024, 32))
y = tf.random.normal((1024, 1))
model.fit(x, y, epochs=3, batch_size=64)
