GREETING = "Hello {city}!"
